#!/usr/bin/env bash
# qoracle.check_layer and export_case on real PEFT layers of every kind (python/tests/peft_layers.py),
# for each PEFT release of fixtures/export/peft-versions.txt, round-tripped through `qoracle check`.
# Needs the exporter's venv (fixtures/export/export.sh makes it: torch, PEFT, hqq, aqlm); never in CI.
# Writes reports/python-peft-layers.md. QORACLE_EXPORT_VENV: that venv elsewhere; QORACLE_CLI: a built
# qoracle (default: build/qoracle, built here).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
script=check-peft-layers
# shellcheck source=scripts/peft-venv.sh
source scripts/peft-venv.sh
cli="${QORACLE_CLI:-$root/build/qoracle}"
if [[ -z "${QORACLE_CLI:-}" ]]; then
  cmake --preset default >/dev/null && cmake --build --preset default --target qoracle >/dev/null
fi

status=0
results=()
for version in $(grep -v '^#' fixtures/export/peft-versions.txt); do
  work=$(mktemp -d)
  out="build-python/peft-layers-$version.json"
  # eetq_cpu_standin/ provides `eetq`, as for the exporter (the real library needs an sm70-sm89 GPU).
  (cd fixtures/export && PYTHONPATH="$exporter/peft-$version:$root/fixtures/export/eetq_cpu_standin:$root/fixtures/export" \
    "$root/$venv/bin/python" -W ignore "$root/python/tests/peft_layers.py" --cli "$cli" \
    --committed "$root/fixtures/peft/peft-$version" --work "$work") > "$out" || status=1
  rm -rf "$work"
  results+=("$out")
done
# Gradients (check_layer(..., grads=True)) on the layers behind fixtures/peft/peft-<version>/gradients.
for version in 0.21.2 0.18.1 0.17.1; do
  work=$(mktemp -d)
  out="build-python/peft-layers-grads-$version.json"
  core=$([[ $version == 0.21.2 ]] || echo --core)
  (cd fixtures/export && PYTHONPATH="$exporter/peft-$version:$root/fixtures/export/eetq_cpu_standin:$root/fixtures/export" \
    "$root/$venv/bin/python" -W ignore "$root/python/tests/peft_layers.py" --cli "$cli" --grads $core \
    --committed "$root/fixtures/peft/peft-$version" --work "$work") > "$out" || status=1
  rm -rf "$work"
  results+=("$out")
done
"$venv/bin/python" python/tests/peft_layers.py --report "${results[@]}" > reports/python-peft-layers.md
echo "check-peft-layers: reports/python-peft-layers.md ($([[ $status == 0 ]] && echo all agree || echo FAILURES))"
exit $status
