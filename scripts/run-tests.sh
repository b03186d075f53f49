#!/usr/bin/env bash
# The test suite: set up, build, run ctest; then the same suite under AddressSanitizer +
# UndefinedBehaviorSanitizer, and the fixture fuzzer's 60 s smoke run (skip both with
# QORACLE_SKIP_SANITIZERS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

cmake --preset default >/dev/null
cmake --build --preset default
ctest --preset default
scripts/test-python.sh  # the Python package: pip-built module, pytest

if [[ "${QORACLE_SKIP_SANITIZERS:-0}" != 1 ]]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan
  ctest --preset asan
  # The fixture fuzzer (clang, libFuzzer, ASan + UBSan): 60 s from the committed seeds (fuzz/).
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz
  ctest --preset fuzz
fi
