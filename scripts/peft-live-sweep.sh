#!/usr/bin/env bash
# The randomized live-layer sweep of issue 29 (python/tests/peft_live_sweep.py): untouched real PEFT
# layers through qoracle.check_layer, and planted faults it must catch, for each PEFT release of
# fixtures/export/peft-versions.txt. Needs the exporter's venv and the package built in it
# (scripts/check-peft-layers.sh makes both); never in CI. Writes reports/peft-live-sweep.md.
# Usage: scripts/peft-live-sweep.sh [COUNT] [SEED]   (COUNT random layers per release, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count="${1:-30}"
seed="${2:-200}"
exporter="${QORACLE_EXPORT_VENV:-$root/fixtures/export/.venv}"
venv=build-python/peft-venv
if [[ ! -x "$venv/bin/python" ]]; then
  echo "peft-live-sweep: no $venv (run scripts/check-peft-layers.sh first)" >&2
  exit 2
fi
results=()
for version in $(grep -v '^#' fixtures/export/peft-versions.txt); do
  out="build-python/peft-live-sweep-$version.json"
  (cd fixtures/export && PYTHONPATH="$exporter/peft-$version:$root/fixtures/export/eetq_cpu_standin:$root/fixtures/export" \
    "$root/$venv/bin/python" -W ignore "$root/python/tests/peft_live_sweep.py" --seed "$seed" --count "$count" \
    --out "$root/$out")
  results+=("$out")
done
# The report's last section, "## Written by hand" (findings, what changed), survives the rewrite.
report=reports/peft-live-sweep.md
hand=$(sed -n '/^## Written by hand/,$p' "$report" 2>/dev/null || true)
{
  "$venv/bin/python" python/tests/peft_live_sweep.py --report "${results[@]}"
  echo "Run on $(date -u +%F) at $(git rev-parse --short HEAD): \`scripts/peft-live-sweep.sh $count $seed\`."
  if [[ -n "$hand" ]]; then printf '\n%s\n' "$hand"; fi
} > "$report.new"
mv "$report.new" "$report"
echo "peft-live-sweep: reports/peft-live-sweep.md"
