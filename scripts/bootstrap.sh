#!/usr/bin/env bash
# Installs what the build needs from Debian packages, only when something is missing.
# Idempotent: a second run installs nothing and takes under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# The build and tests; LibTorch (with OpenBLAS, not the reference BLAS) for the baseline and its
# conformance test, valgrind for the instruction-count gate; python3-h5py for the test that the
# h5py fixture writer's files pass the C++ reader's checksums; clang and its runtimes (libFuzzer,
# ASan) for the fixture fuzzer.
packages=(cmake ninja-build g++ pkg-config libeigen3-dev libhdf5-dev hdf5-tools libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev libopenblas0-pthread valgrind python3-h5py clang libclang-rt-dev
  libopenblas-dev  # the float64 reference's products (reference/float64_products)
  libssl-dev       # SHA-256 of the fixture checksums (OpenSSL's libcrypto)
  python3-dev python3-venv)  # the Python package (python/): headers for its module, a venv to test it in
# `bootstrap.sh bench`: also what the benchmark report needs (plots).
if [[ "${1:-}" == bench ]]; then
  packages+=(python3-matplotlib)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# cuobjdump and nvdisasm for the kernel binary check (ctest optimized.kernel_binary), where nvcc
# builds the kernels but the toolkit lacks them: NVIDIA's PyPI wheels, pinned, unpacked into the
# git-ignored .tools/cuda/bin.
if command -v nvcc >/dev/null 2>&1 && ! command -v cuobjdump >/dev/null 2>&1 && [[ ! -x .tools/cuda/bin/nvdisasm ]]; then
  echo "bootstrap: fetching cuobjdump and nvdisasm (PyPI nvidia-cuda-cuobjdump/nvdisasm 13.2.51)"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" nvidia-cuda-cuobjdump==13.2.51 nvidia-cuda-nvdisasm==13.2.51
  mkdir -p .tools/cuda/bin
  for w in "$tmp"/*.whl; do
    python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [open(sys.argv[2] + "/" + n.split("/")[-1], "wb").write(z.read(n)) for n in z.namelist() if "/bin/" in n]' "$w" .tools/cuda/bin
  done
  chmod +x .tools/cuda/bin/*
  rm -rf "$tmp"
fi
