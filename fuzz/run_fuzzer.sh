#!/usr/bin/env bash
# Runs the fixture fuzzer (fuzz_fixtures.cpp): first every committed seed and past finding
# (regressions/) once, in process, then SECONDS of fuzzing from them, new inputs kept in
# WORKDIR/corpus, findings in WORKDIR/artifacts. Exit non-zero on any finding.
#   fuzz/run_fuzzer.sh BUILD/fuzz/fuzz_fixtures SECONDS WORKDIR [more libFuzzer flags]
set -euo pipefail
binary=$1 seconds=$2 work=$3
shift 3
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$work/corpus" "$work/artifacts"
export LSAN_OPTIONS="suppressions=$here/../fixtures/format/libhdf5.lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# -timeout: one input may take 30 s (a few cases through the reference under ASan take well under 1 s);
# -rss_limit_mb: memory a damaged size makes qoracle use beyond 2 GB is a finding; -malloc_limit_mb:
# but libhdf5 sizes a metadata buffer from a damaged 32-bit length before checking it (malloc of up
# to 4 GB it never touches), which is not.
limits=(-timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=4200 -artifact_prefix="$work/artifacts/")
# Fork mode would merge a crashing seed away silently; run each once here, where it fails.
"$binary" "${limits[@]}" "$here"/regressions/* "$here"/corpus/*
# Fuzzing in fork mode: each job a fresh process, so forking the HDF5 child stays cheap (the
# in-process mode's ASan heap grows past 500 MB and each fork copies its page tables).
exec "$binary" -fork=1 -max_total_time="$seconds" -print_final_stats=1 "${limits[@]}" "$@" \
  "$work/corpus" "$here/corpus" "$here/regressions"
