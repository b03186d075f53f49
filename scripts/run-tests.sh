#!/usr/bin/env bash
# The test suite: set up, build, run ctest; then the same suite under AddressSanitizer +
# UndefinedBehaviorSanitizer (skip that second pass with QORACLE_SKIP_SANITIZERS=1).
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
fi
