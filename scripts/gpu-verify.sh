#!/usr/bin/env bash
# The GPU verification of issue 9, run on the device machine from the repository root with the
# bundle scripts/device-bundle.sh made here (carried as .device-bundle):
#   scripts/gpu-verify.sh tests      every GPU test binary (they run the kernels and the baseline)
#   scripts/gpu-verify.sh memcheck   compute-sanitizer memcheck over the kernels' and the baseline's tests
#   scripts/gpu-verify.sh racecheck  compute-sanitizer racecheck over the kernels with shared memory
#   scripts/gpu-verify.sh bench [F]  bench_optimized (filter F) -> optimized.json, and the real PEFT
#                                    (bench/peft_gpu_timing.py, the carried wheels) -> peft_real.json
#   scripts/gpu-verify.sh check      qoracle check over every fixture -> conformance-gpu.md
# Each stage fits one device call (under 10 minutes) and writes at most 8 files into $OUT (the
# device tool's limits), or into reports/gpu/latest where OUT is unset. Every stage also writes
# device.txt (the GPU, its driver, the bundle's commit) and appends its verdict to summary.txt.
# Exit status: non-zero when a test fails, a GPU test skips, or the sanitizer reports an error.
set -uo pipefail
stage=${1:-}
root=$(pwd)
out=${OUT:-$root/reports/gpu/latest}
mkdir -p "$out"
[[ -f $root/.device-bundle/bundle.tar.xz ]] ||
  { echo "gpu-verify: no .device-bundle/bundle.tar.xz (run scripts/device-bundle.sh here, carry .device-bundle)" >&2; exit 2; }
bundle=${TMPDIR:-/tmp}/qoracle-device-bundle
if ! cmp -s "$bundle/commit" "$root/.device-bundle/commit"; then
  rm -rf "$bundle" && mkdir -p "$bundle"
  tar -C "$bundle" -xJf "$root/.device-bundle/bundle.tar.xz" 2>/dev/null ||  # python3 where the image has no xz
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$root/.device-bundle/bundle.tar.xz" "$bundle" || { echo "gpu-verify: cannot unpack the bundle" >&2; exit 2; }
fi

# The tests find the fixtures in this copy of the tree, cuBLAS in the image.
export QORACLE_SOURCE_DIR=$root
cuda_lib=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
  [[ -e $d/libcublas.so.13 ]] && { cuda_lib=$d; break; }
done
[[ -n $cuda_lib ]] || cuda_lib=$(dirname "$(find / -xdev -name libcublas.so.13 2>/dev/null | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=$bundle/lib${cuda_lib:+:$cuda_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The image's C++ runtime where it is new enough for ours, ours where not.
if ldd "$bundle/bin/qoracle" 2>&1 | grep -q "GLIBCXX.*not found"; then
  export LD_LIBRARY_PATH=$bundle/lib-fallback:$LD_LIBRARY_PATH
fi
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

{
  echo "date: $(date -u +%FT%TZ)"
  echo "bundle commit: $(tr '\n' ' ' <"$bundle/commit")"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1
  echo "cuBLAS from: ${cuda_lib:-not found}"
  echo "LD_LIBRARY_PATH: $LD_LIBRARY_PATH"
  ldd "$bundle/bin/test_peft_order_gpu" 2>&1 | grep "not found" || true
} >"$out/device.txt"
status=0
verdict() { echo "$stage: $*" | tee -a "$out/summary.txt"; }

run_tests() {  # every test binary; a GPU test that skips is a failure here
  for t in "$bundle"/bin/test_*; do
    local name log
    name=$(basename "$t")
    log=$("$t" --gtest_brief=1 2>&1)
    local rc=$?
    echo "=== $name (exit $rc)" >>"$out/tests.log"
    echo "$log" >>"$out/tests.log"
    local passed skipped failed
    passed=$(echo "$log" | sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    skipped=$(echo "$log" | sed -n 's/.*\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -1)
    failed=$(echo "$log" | sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    verdict "$name exit $rc: ${passed:-0} passed, ${skipped:-0} skipped, ${failed:-0} failed"
    [[ $rc == 0 ]] || status=1
    echo "$log" | grep -q "no GPU" && { verdict "$name: a GPU test skipped (no GPU)"; status=1; }
  done
}

sanitize() {  # tool binary filter seconds
  local tool=$1 bin=$2 filter=$3 limit=$4 rc
  echo "=== $tool $bin --gtest_filter=$filter" >>"$out/sanitizer.log"
  timeout "$limit" "$sanitizer" --tool "$tool" --error-exitcode 99 --print-limit 20 "$bundle/bin/$bin" --gtest_brief=1 \
    --gtest_filter="$filter" >>"$out/sanitizer.log" 2>&1
  rc=$?
  verdict "$tool $bin $filter: exit $rc$([[ $rc == 99 ]] && echo ' (sanitizer errors)')$([[ $rc == 124 ]] && echo ' (timed out)')"
  [[ $rc == 0 ]] || status=1
}

case "$stage" in
  tests) run_tests ;;
  # Each stage's limits add up to at most 9 min 20 s (one device call of 10). The fixtures run through one
  # PEFT version, a third of them.
  memcheck)
    sanitize memcheck test_optimized_fused_gemv '*' 100
    sanitize memcheck test_optimized_cayley '*' 60
    sanitize memcheck test_optimized_hqq_merge '*' 60
    sanitize memcheck test_optimized_dense_merge '*' 30
    sanitize memcheck test_optimized_eetq_merge '*' 20
    sanitize memcheck test_optimized_fixtures '*peft_0_21_2*' 140
    sanitize memcheck test_peft_order_gpu '*peft_0_21_2*:PeftOrderGpuLayer.*' 150
    ;;
  racecheck)
    sanitize racecheck test_optimized_fused_gemv 'FusedGemv.*:FusedGemvShapes.OddShapes*:FusedGemvShapes.GemmAcross*' 240
    sanitize racecheck test_optimized_cayley '*Gpu*' 120
    sanitize racecheck test_optimized_hqq_merge '*' 150
    sanitize racecheck test_optimized_eetq_merge 'OptimizedEetqMerge/*' 20
    ;;
  bench)
    "$bundle/bin/bench_optimized" --benchmark_filter="${2:-.}" --benchmark_min_time=0.1 \
      --benchmark_out="$out/optimized.json" --benchmark_out_format=json >"$out/bench.log" 2>&1
    rc=$?
    verdict "bench_optimized exit $rc, $(grep -c '"name"' "$out/optimized.json" 2>/dev/null || echo 0) results, $(grep -c 'ERROR OCCURRED' "$out/bench.log") errors"
    [[ $rc == 0 ]] || status=1
    grep -q "ERROR OCCURRED" "$out/bench.log" && status=1
    if [[ -d $root/.device-bundle/wheels ]]; then
      site=${TMPDIR:-/tmp}/qoracle-site
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$root"/.device-bundle/wheels/*.whl >>"$out/bench.log" 2>&1
      PYTHONPATH=$site PYTHONUNBUFFERED=1 timeout 300 python3 "$root/bench/peft_gpu_timing.py" --out "$out/peft_real.json" \
        >>"$out/bench.log" 2>&1
      rc=$?
      verdict "peft_gpu_timing exit $rc: $(tail -1 "$out/bench.log")"
      [[ $rc == 0 ]] || status=1
    fi
    ;;
  check)
    "$bundle/bin/qoracle" check "$root/fixtures" --report "$out/conformance-gpu.md" >"$out/check.log" 2>&1
    rc=$?
    verdict "qoracle check exit $rc: $(grep -E '^[0-9]+ (checks|passed)|passed' "$out/check.log" | tail -1)"
    [[ $rc == 0 ]] || status=1
    ;;
  *) echo "usage: scripts/gpu-verify.sh tests|memcheck|racecheck|bench [FILTER]|check" >&2; exit 2 ;;
esac
exit $status
