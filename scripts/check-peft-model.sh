#!/usr/bin/env bash
# qoracle.check_model and export_model on a whole transformers Llama-architecture model (random
# weights, every projection adapted), round-tripped through `qoracle check`: python/tests/peft_model_check.py.
# Needs the exporter's venv (torch, transformers, PEFT, hqq, aqlm); never in CI. Extra arguments go to the
# script (--variants lora,aqlm-oft,eetq-lora --hidden 512 --compare-serial ...); --pytest runs
# python/tests/test_model.py (check_model's threads) in the same venv instead. QORACLE_EXPORT_VENV: that venv elsewhere;
# QORACLE_CLI: a built qoracle (default: build-nocuda/qoracle, built here); QORACLE_PEFT: the PEFT release.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
script=check-peft-model
# shellcheck source=scripts/peft-venv.sh
source scripts/peft-venv.sh
cli="${QORACLE_CLI:-$root/build-nocuda/qoracle}"
if [[ -z "${QORACLE_CLI:-}" ]]; then
  cmake --preset nocuda >/dev/null && cmake --build --preset nocuda --target qoracle >/dev/null
fi
version="${QORACLE_PEFT:-0.21.2}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# fixtures/export: aqlm_seeded (the exporter's seeded valid aqlm layers); eetq_cpu_standin provides
# `eetq`, as for the exporter (the real library needs an sm70-sm89 GPU).
export PYTHONPATH="$exporter/peft-$version:$root/fixtures/export/eetq_cpu_standin:$root/fixtures/export" NUMBA_NUM_THREADS=1
if [[ "${1:-}" == "--pytest" ]]; then  # pytest at CI's pin (python/pyproject.toml [test])
  "$venv/bin/pip" install -q pytest==8.4.2
  exec "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests/test_model.py
fi
"$venv/bin/python" -W ignore python/tests/peft_model_check.py --cli "$cli" --work "$work" "$@"
