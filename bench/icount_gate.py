#!/usr/bin/env python3
"""Instruction-count regression gate.

Runs every workload of bench/icount_workload under valgrind's callgrind (only the measured loop is
instrumented), and compares the instruction counts (Ir) with a committed baseline. Instruction
counts of the same binary on the same input are deterministic, so unlike wall time they can gate
CI on a shared, noisy 2-core machine.

  icount_gate.py --workload BIN --valgrind VALGRIND --baseline JSON [--out JSON]
                 [--threshold 0.03] [--only NAME ...] [--scale-baseline F] [--update]

Exit 0: every workload within +threshold of its baseline count. Exit 1: a regression, a
workload missing from the baseline, or a baseline entry without a workload. --update rewrites
the baseline from this run (commit it with the change that explains the new counts).
"""
import argparse
import concurrent.futures
import json
import os
import platform
import subprocess
import sys
import tempfile


def count(valgrind, workload, name):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = [valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", workload, name]
        # One thread: OpenBLAS's workers would add a varying count of spin-wait instructions. One
        # kernel: OpenBLAS picks its kernels by CPU model, so the gate names one (AVX2) and counts
        # the same instructions on any x86-64 machine that has it.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_CORETYPE="Haswell")
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if run.returncode != 0:
            raise RuntimeError(f"{name}: valgrind exited {run.returncode}:\n{run.stderr[-2000:]}")
        total = None
        with open(out) as f:
            for line in f:
                if line.startswith("totals:"):  # "summary:" is written before collection starts
                    total = int(line.split()[1])
        if not total:
            raise RuntimeError(f"{name}: no instructions counted (no 'totals:' line in the callgrind output)")
        return total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", required=True)
    p.add_argument("--valgrind", default="valgrind")
    p.add_argument("--baseline", required=True)
    p.add_argument("--out", help="write this run's counts as JSON")
    p.add_argument("--threshold", type=float, default=None, help="allowed relative increase (default: the baseline's)")
    p.add_argument("--only", nargs="*", help="run only these workloads")
    p.add_argument("--scale-baseline", type=float, default=1.0, help="multiply baseline counts (self-test)")
    p.add_argument("--update", action="store_true", help="rewrite the baseline from this run")
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args()

    names = subprocess.run([a.workload, "--list"], capture_output=True, text=True, check=True).stdout.split()
    if a.only:
        unknown = sorted(set(a.only) - set(names))
        if unknown:
            sys.exit(f"icount_gate: unknown workload(s) {unknown}; --list gives {names}")
        names = [n for n in names if n in a.only]

    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        counts = dict(zip(names, pool.map(lambda n: count(a.valgrind, a.workload, n), names)))

    baseline = {}
    if os.path.exists(a.baseline):
        with open(a.baseline) as f:
            baseline = json.load(f)
    threshold = a.threshold if a.threshold is not None else baseline.get("threshold", 0.03)
    run_info = {"machine": platform.machine(), "valgrind": subprocess.run([a.valgrind, "--version"], capture_output=True,
                                                                          text=True).stdout.strip()}
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"run": run_info, "instructions": counts}, f, indent=2, sort_keys=True)
    if a.update:
        doc = {
            "about": "Instruction counts (callgrind Ir) of bench/icount_workload per workload, RelWithDebInfo build. "
                     "Regenerate with scripts/run-benchmarks.sh --update-icount-baseline.",
            "threshold": threshold,
            "run": run_info,
            "instructions": counts,
        }
        with open(a.baseline, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"icount_gate: wrote {len(counts)} counts to {a.baseline}")
        return 0

    base_counts = {k: v * a.scale_baseline for k, v in baseline.get("instructions", {}).items()}
    failures = []
    print(f"{'workload':32} {'baseline Ir':>14} {'Ir':>14} {'change':>8}")
    for name in names:
        now = counts[name]
        if name not in base_counts:
            failures.append(f"NEW {name}: not in {a.baseline} (run with --update and commit it)")
            print(f"{name:32} {'-':>14} {now:14d} {'new':>8}")
            continue
        was = base_counts[name]
        change = now / was - 1.0
        mark = ""
        if change > threshold:
            mark = "  REGRESSION"
            failures.append(f"REGRESSION {name} {change * 100:+.2f}% (threshold +{threshold * 100:.1f}%)")
        elif change < -threshold:
            mark = "  faster: update the baseline"
        print(f"{name:32} {int(was):14d} {now:14d} {change * 100:+7.2f}%{mark}")
    if not a.only:
        for name in sorted(set(base_counts) - set(names)):
            failures.append(f"MISSING {name}: in the baseline but no longer a workload (run with --update)")
    for f in failures:
        print(f)
    print(f"icount_gate: {len(names)} workloads, threshold +{threshold * 100:.1f}%: "
          + ("FAILED" if failures else "passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
