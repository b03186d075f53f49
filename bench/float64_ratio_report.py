#!/usr/bin/env python3
"""The float64 reference against OpenBLAS's dgemm of the same shape (issue 31's goals).

Reads a Google Benchmark JSON of bench_reference (aggregates, with the blas/dgemm rows beside the
forwards, so both come from one run) and, optionally, bench_torch_baseline's JSON for the merges,
and prints a Markdown table: each forward's median wall time, the dgemm's, their ratio and the goal
(<= 3x at 1 token, <= 1.5x from 128 tokens), the dgemm timed beside each iteration
(counter dgemm_ms) where the row has it; each merge + unmerge against LibTorch's (<= 2x).

  float64_ratio_report.py --reference JSON [--torch JSON] [--machine TEXT]
"""
import argparse
import json
import re


def medians(path):
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for b in doc["benchmarks"]:
        if b.get("aggregate_name", "median") != "median":
            continue
        name = b.get("run_name", b["name"])
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
        out[name] = b["real_time"] * scale  # ms
        if "dgemm_ms" in b:
            out["beside:" + name] = b["dgemm_ms"]
    return out, doc.get("context", {})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", required=True)
    p.add_argument("--torch")
    p.add_argument("--machine", default="")
    a = p.parse_args()
    ref, ctx = medians(a.reference)
    print(f"Machine: {a.machine or ctx.get('host_name', '?')}; {ctx.get('num_cpus', '?')} CPUs; "
          f"load average at start {ctx.get('load_avg', '?')}. Median wall time of 3 repetitions.\n")
    print("| forward | tokens | reference | dgemm | ratio | goal |")
    print("|---|---:|---:|---:|---:|---|")
    met = total = 0
    for name, t in sorted(ref.items()):
        m = re.fullmatch(r"reference/forward/(\w+)/(\w+)/(n\d+|o\d+_i\d+)/t(\d+)", name)
        if not m:
            continue
        # The dgemm timed before each iteration of the row itself, else the separate dgemm row.
        gemm = ref.get("beside:" + name) or ref.get(f"blas/dgemm/{m[3]}/t{m[4]}")
        if gemm is None:
            continue
        tokens = int(m[4])
        goal = 3.0 if tokens == 1 else 1.5 if tokens >= 128 else None
        ratio = t / gemm
        verdict = "—" if goal is None else ("met" if ratio <= goal else f"**missed** (≤ {goal}×)")
        if goal is not None:
            total += 1
            met += ratio <= goal
        print(f"| {m[1]}/{m[2]}/{m[3]} | {tokens} | {t:,.1f} ms | {gemm:,.1f} ms | {ratio:.2f}× | {verdict} |")
    print(f"\nForward goals met: {met} of {total}.\n")
    if a.torch:
        torch, _ = medians(a.torch)
        print("| merge + unmerge | reference (float64) | LibTorch (float32, PEFT's ops) | ratio |")
        print("|---|---:|---:|---:|")
        for name, t in sorted(ref.items()):
            if name.startswith("reference/merge/"):
                other = torch.get("torch/" + name[len("reference/"):])
                cell = f"{other:,.1f} ms | {t / other:.2f}×" if other else "— | —"
                print(f"| {name[len('reference/merge/'):]} | {t:,.1f} ms | {cell} |")


if __name__ == "__main__":
    main()
