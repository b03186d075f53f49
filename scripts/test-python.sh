#!/usr/bin/env bash
# The Python package (python/): build it as users install it (pip, scikit-build-core + nanobind at
# the versions pinned in python/pyproject.toml) into a venv under build-python/, reusing its CMake
# build folder, then run its tests (numpy only; the live-PEFT part is tested in the exporter's venv,
# see python/README.md). run-tests.sh calls this after ctest; QORACLE_CLI lets the tests compare
# messages with the CLI of that build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build-python/venv
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
# The build requirements from pyproject.toml, so the build folder is reused (no isolated build env).
requires=$("$venv/bin/python" -c 'import tomllib; print(" ".join(tomllib.load(open("python/pyproject.toml", "rb"))["build-system"]["requires"]))')
# shellcheck disable=SC2086
"$venv/bin/pip" install -q $requires
"$venv/bin/pip" install -q --no-build-isolation "./python[test]" --config-settings=build-dir="$PWD/build-python/cmake"
QORACLE_CLI="$PWD/build/qoracle" "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
