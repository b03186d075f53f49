#!/usr/bin/env bash
# Installs what the build needs from Debian packages, only when something is missing.
# Idempotent: a second run installs nothing and takes under a second.
set -euo pipefail

# The build and tests; LibTorch (with OpenBLAS, not the reference BLAS) for the baseline and its
# conformance test, valgrind for the instruction-count gate; python3-h5py for the test that the
# h5py fixture writer's files pass the C++ reader's checksums; clang and its runtimes (libFuzzer,
# ASan) for the fixture fuzzer.
packages=(cmake ninja-build g++ pkg-config libeigen3-dev libhdf5-dev hdf5-tools libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev libopenblas0-pthread valgrind python3-h5py clang libclang-rt-dev)
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
