#!/usr/bin/env bash
# The benchmarks: set up, build, run the reference and the LibTorch baseline (Google Benchmark,
# 3 repetitions, medians), the instruction-count gate and the HQQ merge-quality sweep, then write
# reports/bench/: reference.json, torch.json, icount-latest.json, README.md, float64-ratios.md and
# PNG plots.
#   --quick                     256 and 1024 features only (a few minutes instead of ~10)
#   --update-icount-baseline    rewrite reports/bench/icount-baseline.json from this build
# Exit status non-zero when the instruction-count gate fails (the reports are written anyway).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 update=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --update-icount-baseline) update=1 ;;
    *) echo "run-benchmarks: unknown option $arg (--quick, --update-icount-baseline)" >&2; exit 2 ;;
  esac
done

scripts/bootstrap.sh bench
cmake --preset default >/dev/null
cmake --build --preset default --target bench_reference bench_torch_baseline icount_workload qoracle

out=reports/bench
mkdir -p "$out"
prev=$(mktemp -d)
trap 'rm -rf "$prev"' EXIT
cp "$out"/reference.json "$out"/torch.json "$prev"/ 2>/dev/null || true

# Every core everywhere: the float64 reference decodes and multiplies on all of them (OpenBLAS's
# dgemm, the row it is measured against, too), so LibTorch gets as many intra-op threads.
QORACLE_TORCH_THREADS=$(nproc)
export QORACLE_TORCH_THREADS
filter='.'
[[ $quick == 1 ]] && filter='/n(256|1024)(/|$)|cayley'
gb=(--benchmark_filter="$filter" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
    --benchmark_min_time=0.2 --benchmark_out_format=json)
./build/bench/bench_reference "${gb[@]}" --benchmark_out="$out/reference.json"
./build/bench/bench_torch_baseline "${gb[@]}" --benchmark_out="$out/torch.json"

gate=(python3 bench/icount_gate.py --workload build/bench/icount_workload --baseline "$out/icount-baseline.json")
[[ $update == 1 ]] && "${gate[@]}" --update
gate_status=0
"${gate[@]}" --out "$out/icount-latest.json" || gate_status=$?

./build/qoracle merge-quality --report reports/hqq-merge-quality.md >/dev/null

# Debian's python3 (matplotlib comes from python3-matplotlib), whatever python3 is first on PATH.
/usr/bin/python3 bench/report.py --reference "$out/reference.json" --torch "$out/torch.json" \
  --icount "$out/icount-latest.json" --icount-baseline "$out/icount-baseline.json" \
  --merge-quality reports/hqq-merge-quality.md --out "$out" \
  --previous-reference "$prev/reference.json" --previous-torch "$prev/torch.json"
# The float64 reference against OpenBLAS's dgemm (issue 31's goals), and its merges against LibTorch's.
python3 bench/float64_ratio_report.py --reference "$out/reference.json" --torch "$out/torch.json" \
  --machine "$(nproc)-core $(uname -m) machine" > "$out/float64-ratios.md"
exit "$gate_status"
