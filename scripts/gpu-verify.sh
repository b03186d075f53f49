#!/usr/bin/env bash
# The GPU verification, run on the device machine from the repository root with the bundle
# scripts/device-bundle.sh made here (carried as .device-bundle). One call does it all:
#   scripts/gpu-verify.sh all [--no-peft] [--no-sanitizer] [--ncu]
# runs, in order of value, each stage under its own timeout (about 8 minutes in all):
#   tests      every GPU test binary (they run the kernels and the baseline)       <= 120 s
#   check      qoracle check over every fixture, GPU rows -> conformance-gpu.md.gz <= 90 s
#   bench      bench_optimized (every forward row, the merges) -> optimized.json   <= 170 s
#   peft       the real PEFT (bench/peft_gpu_timing.py, the carried wheels)        <= 100 s
#   ncu        (--ncu) Nsight Compute on the kernels the goals hinge on -> ncu.txt  <= 270 s
#   sanitizer  compute-sanitizer memcheck and racecheck on the kernels with shared
#              memory or atomics (the GEMV's split, the prepass, Cayley, merges)   <= 160 s
# Each stage alone: scripts/gpu-verify.sh tests|check|bench [FILTER]|peft|ncu|sanitizer.
# Results go to $OUT (the device tool brings back at most 8 files), or reports/gpu/latest where
# OUT is unset, as each stage finishes, so a run cut short keeps what finished: summary.txt (one
# verdict line per binary or stage), device.txt, tests.log, conformance-gpu.md.gz, optimized.json,
# bench.log, peft_real.json, sanitizer.log.
# Exit status: non-zero when a test fails, a GPU test skips, a stage times out, or the sanitizer
# reports an error.
set -uo pipefail
stage=${1:-}
root=$(pwd)
out=${OUT:-$root/reports/gpu/latest}
mkdir -p "$out"
[[ -f $root/.device-bundle/bundle.tar.xz ]] ||
  { echo "gpu-verify: no .device-bundle/bundle.tar.xz (run scripts/device-bundle.sh here, carry .device-bundle)" >&2; exit 2; }
bundle=${TMPDIR:-/tmp}/qoracle-device-bundle
if ! cmp -s "$bundle/commit" "$root/.device-bundle/commit"; then
  rm -rf "$bundle" && mkdir -p "$bundle"
  tar -C "$bundle" -xJf "$root/.device-bundle/bundle.tar.xz" 2>/dev/null ||  # python3 where the image has no xz
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$root/.device-bundle/bundle.tar.xz" "$bundle" || { echo "gpu-verify: cannot unpack the bundle" >&2; exit 2; }
fi

# The tests find the fixtures in this copy of the tree, cuBLAS in the image.
export QORACLE_SOURCE_DIR=$root
cuda_lib=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
  [[ -e $d/libcublas.so.13 ]] && { cuda_lib=$d; break; }
done
[[ -n $cuda_lib ]] || cuda_lib=$(dirname "$(find / -xdev -name libcublas.so.13 2>/dev/null | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=$bundle/lib${cuda_lib:+:$cuda_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The image's C++ runtime where it is new enough for ours, ours where not.
if ldd "$bundle/bin/qoracle" 2>&1 | grep -q "GLIBCXX.*not found"; then
  export LD_LIBRARY_PATH=$bundle/lib-fallback:$LD_LIBRARY_PATH
fi
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

{
  echo "date: $(date -u +%FT%TZ)"
  echo "bundle commit: $(tr '\n' ' ' <"$bundle/commit")"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1
  echo "cuBLAS from: ${cuda_lib:-not found}"
  echo "LD_LIBRARY_PATH: $LD_LIBRARY_PATH"
  ldd "$bundle/bin/test_peft_order_gpu" 2>&1 | grep "not found" || true
} >"$out/device.txt"
status=0
verdict() { echo "$stage: $*" | tee -a "$out/summary.txt"; }

run_tests() {  # every test binary; a failure is counted from gtest's XML report, a skip is a failure here
  local deadline=$((SECONDS + ${1:-150}))
  for t in "$bundle"/bin/test_*; do
    local name rc left xml failures tests skipped
    name=$(basename "$t")
    left=$((deadline - SECONDS))
    if ((left < 5)); then verdict "$name: not run (stage time spent)"; status=1; continue; fi
    xml=${TMPDIR:-/tmp}/$name.xml
    rm -f "$xml"
    echo "=== $name" >>"$out/tests.log"
    timeout "$left" "$t" --gtest_brief=1 --gtest_output="xml:$xml" >>"$out/tests.log" 2>&1
    rc=$?
    # The XML's testsuites element counts everything, whatever --gtest_brief printed.
    tests=$(sed -n 's/.*<testsuites tests="\([0-9]*\)".*/\1/p' "$xml" 2>/dev/null | head -1)
    failures=$(sed -n 's/.*<testsuites [^>]*failures="\([0-9]*\)".*/\1/p' "$xml" 2>/dev/null | head -1)
    skipped=$(grep -c '<skipped' "$xml" 2>/dev/null)
    verdict "$name exit $rc: ${tests:-?} tests, ${failures:-?} failed, ${skipped:-0} skipped$([[ $rc == 124 ]] && echo ' (timed out)')"
    [[ $rc == 0 && ${failures:-1} == 0 ]] || status=1
    grep -q "no GPU" "$xml" 2>/dev/null && { verdict "$name: a GPU test skipped (no GPU)"; status=1; }
  done
}

run_check() {
  timeout "${1:-90}" "$bundle/bin/qoracle" check "$root/fixtures" --report "$out/conformance-gpu.md" >"$out/check.log" 2>&1
  local rc=$?
  verdict "qoracle check exit $rc: $(grep -E 'passed' "$out/check.log" | tail -1)$([[ $rc == 124 ]] && echo ' (timed out)')"
  [[ $rc == 0 ]] || status=1
  gzip -f "$out/conformance-gpu.md" 2>/dev/null
  tail -3 "$out/check.log" >>"$out/summary.txt"; rm -f "$out/check.log"
}

run_bench() {
  timeout "${2:-150}" "$bundle/bin/bench_optimized" --benchmark_filter="${1:-.}" \
    --benchmark_out="$out/optimized.json" --benchmark_out_format=json >>"$out/bench.log" 2>&1
  local rc=$?
  verdict "bench_optimized exit $rc, $(grep -c '"run_name"' "$out/optimized.json" 2>/dev/null || echo 0) rows, $(grep -c 'error_occurred.*true' "$out/optimized.json" 2>/dev/null || echo 0) errors$([[ $rc == 124 ]] && echo ' (timed out)')"
  [[ $rc == 0 ]] || status=1
}

run_peft() {
  [[ -d $root/.device-bundle/wheels ]] || { verdict "no wheels carried: skipped"; return; }
  local site=${TMPDIR:-/tmp}/qoracle-site rc
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    "$root"/.device-bundle/wheels/*.whl >>"$out/bench.log" 2>&1
  PYTHONPATH=$site PYTHONUNBUFFERED=1 timeout "${1:-100}" python3 "$root/bench/peft_gpu_timing.py" --out "$out/peft_real.json" \
    >>"$out/bench.log" 2>&1
  rc=$?
  verdict "peft_gpu_timing exit $rc$([[ $rc == 124 ]] && echo ' (timed out)')"
  [[ $rc == 0 ]] || status=1
}

sanitize() {  # tool binary filter seconds
  local tool=$1 bin=$2 filter=$3 limit=$4 rc
  echo "=== $tool $bin --gtest_filter=$filter" >>"$out/sanitizer.log"
  timeout "$limit" "$sanitizer" --tool "$tool" --error-exitcode 99 --print-limit 20 "$bundle/bin/$bin" --gtest_brief=1 \
    --gtest_filter="$filter" >>"$out/sanitizer.log" 2>&1
  rc=$?
  verdict "$tool $bin $filter: exit $rc$([[ $rc == 99 ]] && echo ' (sanitizer errors)')$([[ $rc == 124 ]] && echo ' (timed out)')"
  [[ $rc == 0 ]] || status=1
}

run_ncu() {  # Nsight Compute's speed-of-light on the kernels the goals hinge on (one launch each, caches flushed)
  local ncu rc spec filter kernel
  ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  for spec in "forward/none/hqq/n4096/t1/f16|tc_gemv_kernel" "forward/none/linear/n4096/t1/f16|tc_gemv_kernel" \
    "forward/none/eetq/n4096/t16/f16|tc_gemv_kernel" "forward/none/aqlm/n4096/t1/f16|tc_gemv_kernel" \
    "forward/none/hqq/n4096/t2048/f16|dequant_rows_kernel" "merge/lora/hqq/n4096|trajectory_kernel"; do
    filter=${spec%%|*} kernel=${spec##*|}
    echo "=== $filter $kernel" >>"$out/ncu.txt"
    timeout 45 "$ncu" -k "regex:$kernel" --launch-count 1 --section SpeedOfLight --section LaunchStats --section Occupancy \
      "$bundle/bin/bench_optimized" --benchmark_filter="optimized/$filter" >>"$out/ncu.txt" 2>&1
    rc=$?
    verdict "ncu $filter $kernel: exit $rc$([[ $rc == 124 ]] && echo ' (timed out)')"
  done
}

run_sanitizer() {  # the kernels with shared memory or atomics, on small layers
  sanitize memcheck test_optimized_row_layouts '*hqq4:*int8:*aqlm2x8' 40
  sanitize racecheck test_optimized_row_layouts '*hqq4' 40
  sanitize memcheck test_optimized_fused_gemv 'FusedGemvShapes.*' 25
  sanitize racecheck test_optimized_cayley '*Gpu*b64_neumann5*' 30
  sanitize memcheck test_optimized_hqq_merge '*' 25
}

case "$stage" in
  all)
    peft=1 san=1 ncu=0
    for a in "${@:2}"; do
      [[ $a == --no-peft ]] && peft=0
      [[ $a == --no-sanitizer ]] && san=0
      [[ $a == --ncu ]] && ncu=1
    done
    stage=tests run_tests 120
    stage=check run_check 90
    stage=bench run_bench . 170
    ((peft)) && stage=peft run_peft 100
    ((ncu)) && stage=ncu run_ncu
    ((san)) && stage=sanitizer run_sanitizer
    ;;
  tests) run_tests "${2:-600}" ;;
  check) run_check 540 ;;
  bench) run_bench "${2:-.}" 540 ;;
  peft) run_peft 540 ;;
  sanitizer) run_sanitizer ;;
  ncu) run_ncu ;;
  *) echo "usage: scripts/gpu-verify.sh all [--no-peft] [--no-sanitizer] [--ncu] | tests | check | bench [FILTER] | peft | ncu | sanitizer" >&2; exit 2 ;;
esac
exit $status
