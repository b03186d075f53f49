#!/usr/bin/env bash
# The main job: set up, build, recompute every committed fixture with the reference, print the
# conformance table and write reports/conformance.md. Exit status non-zero on any FAIL/ERROR.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cmake --preset default >/dev/null
cmake --build --preset default --target qoracle
./build/qoracle check fixtures/ --report reports/conformance.md "$@"
