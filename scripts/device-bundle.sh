#!/usr/bin/env bash
# Packs what a GPU session runs on the device machine into .device-bundle/ (git-ignored): the GPU
# test binaries, bench_optimized and qoracle, built here with the `device` preset (Release, sm_90)
# and stripped, plus the shared libraries they need that a bare CUDA image lacks (HDF5 and what it
# links, Google Benchmark), as one xz archive (the tree and what it carries must stay under the
# device tool's 64 MiB). The device machine has no Debian packages and reaches no registry, so
# nothing is built there. Then, with the device tool, one stage per call (each under 10 minutes):
#   run(command="scripts/gpu-verify.sh tests", carry=[".device-bundle"])   # then sanitize, bench, check
# reports/gpu/README.md says what to commit from what comes back.
set -euo pipefail
cd "$(dirname "$0")/.."

tests=(test_optimized_device test_optimized_cayley test_optimized_weight_views test_optimized_fused_gemv test_optimized_row_layouts
  test_optimized_hqq_merge test_optimized_dense_merge test_optimized_eetq_merge test_optimized_fixtures test_peft_order_gpu)
scripts/bootstrap.sh
cmake --preset device >/dev/null
cmake --build --preset device --target "${tests[@]}" bench_optimized qoracle

bundle=build-device/bundle
rm -rf "$bundle" .device-bundle
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/lib-fallback" .device-bundle
for t in "${tests[@]}"; do cp build-device/conformance/tests/"$t" "$bundle/bin/"; done
cp build-device/bench/bench_optimized build-device/qoracle "$bundle/bin/"
strip "$bundle"/bin/*

# Every library the binaries link, except the C runtime and CUDA's (the image has both). The C++
# runtime goes to lib-fallback: gpu-verify.sh uses it only where the image's is older than ours.
ldd "$bundle"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | libresolv.so* | ld-linux*) ;;
    libcublas* | libcudart*) ;;
    libstdc++.so* | libgcc_s.so*) cp -L "$lib" "$bundle/lib-fallback/" ;;
    *) cp -L "$lib" "$bundle/lib/" ;;
  esac
done
git rev-parse HEAD >"$bundle/commit"
git diff --quiet HEAD || echo "dirty" >>"$bundle/commit"
tar -C "$bundle" -cJf .device-bundle/bundle.tar.xz .
# The real PEFT for bench/peft_gpu_timing.py, at the exporter's pinned versions (the image has
# torch, transformers and accelerate; hqq ships only as an sdist, so its wheel is built here).
mkdir -p .device-bundle/wheels
python3 -m pip download -q --no-deps --only-binary=:all: -d .device-bundle/wheels peft==0.21.2 termcolor==3.3.0
python3 -m pip wheel -q --no-deps -w .device-bundle/wheels hqq==0.2.8.post1
cp "$bundle/commit" .device-bundle/commit
echo "device-bundle: .device-bundle/bundle.tar.xz, $(du -h .device-bundle/bundle.tar.xz | cut -f1) (commit $(head -c 12 "$bundle/commit"))"
