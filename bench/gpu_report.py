#!/usr/bin/env python3
"""The GPU benchmark report: a Markdown summary of what bench_optimized measured on a device
(scripts/gpu-verify.sh -> optimized.json), beside the real PEFT on the same device
(bench/peft_gpu_timing.py -> peft_real.json) where given. Reads a JSON cut short by a timeout too
(the rows that finished).

Forward rows (adapter/format/shape/tokens/dtype): the fused layer's device time per forward (cold
L2), the same replayed as a CUDA graph (few tokens), the PEFT-order baseline (bench/peft_order_gpu),
the real PEFT; speedups; × floor (time over the format's weight bytes at the measured copy
bandwidth); the CPU time to enqueue one forward; the kernels that ran. Then the goals of the GEMV
and GEMM issues judged on those rows, and the merges.

    python3 bench/gpu_report.py --gpu optimized.json [--peft-real peft_real.json] --title T --out FILE.md
"""
import argparse
import json
import re
import sys


def load_rows(path):
    """{name: benchmark} from a Google Benchmark JSON, repaired if the run was cut short."""
    text = open(path).read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:  # cut short: keep the complete rows
        start = text.find('"benchmarks"')
        data, objs = {}, []
        if start >= 0:
            body = text[text.find("[", start) + 1:]
            depth, begin = 0, None
            for i, ch in enumerate(body):
                if ch == "{":
                    depth += 1
                    begin = i if depth == 1 else begin
                elif ch == "}":
                    depth -= 1
                    if depth == 0 and begin is not None:
                        try:
                            objs.append(json.loads(body[begin:i + 1]))
                        except json.JSONDecodeError:
                            pass
        data["benchmarks"] = objs
    rows = {}
    for b in data.get("benchmarks", []):
        rows[re.sub(r"(/(manual_time|iterations:\d+|min_time:[\d.]+))+$", "", b["name"])] = b
    return rows, data.get("context", {})


def seconds(b):
    if not b or b.get("error_occurred"):
        return None
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def fmt(t):
    if t is None:
        return "—"
    return f"{t * 1e6:.1f}" if t < 1e-2 else f"{t * 1e6:,.0f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "—"


def key(name):
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name)]


def tokens_of(case):
    m = re.search(r"/t(\d+)(/|$)", case)
    return int(m.group(1)) if m else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", required=True)
    p.add_argument("--peft-real")
    p.add_argument("--title", default="GPU benchmarks")
    p.add_argument("--note", action="append", default=[], help="a line of Markdown about the run (repeatable)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    gpu, ctx = load_rows(a.gpu)
    real, rctx = load_rows(a.peft_real) if a.peft_real else ({}, {})
    cases = sorted({k.split("/forward/", 1)[1] for k in gpu if "/forward/" in k}, key=key)
    if not cases:
        print(f"gpu_report: no forward rows in {a.gpu}", file=sys.stderr)
        return 1
    md = [f"# {a.title}", "", "Written by `bench/gpu_report.py`; do not edit by hand.", ""]
    md.append(f"- Run {ctx.get('date', '?')} on {ctx.get('host_name', '?')}; "
              f"{len(gpu)} rows in `{a.gpu.split('/')[-1]}`.")
    md += [f"- {n}" for n in a.note]
    md += ["- Times: µs of GPU time per forward by CUDA events (optimized/device/forward_timing.hpp). **fused**: the "
           "resident fused layer, forwards back to back over copies of its weights (≥ 256 MiB in all, so each reads "
           "them from memory, as layer after layer of a model does); **graph**: the same replayed as CUDA graphs; "
           "**isolated**: each forward alone after an L2 flush (launch latency and ramp included), the same method "
           "for ours and the baseline; **PEFT order**: PEFT's ops one launch each on cuBLAS "
           "(bench/peft_order_gpu), isolated and back to back on one copy (warm: its weights may stay in L2); "
           "**PEFT**: the real PEFT (bench/peft_gpu_timing.py, where given). vs PEFT order = isolated ÷ isolated. "
           "× floor = fused ÷ (the format's weight bytes ÷ measured copy bandwidth). host µs: CPU time to enqueue "
           "one forward.", ""]
    header = ["case", "fused", "graph", "fused isolated", "PEFT order isolated", "PEFT order (warm)", "PEFT",
              "vs PEFT order", "vs PEFT", "× floor", "host µs", "path"]
    md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    goals = []
    for case in cases:
        f = gpu.get("optimized/forward/" + case)
        g = gpu.get("optimized_graph/forward/" + case)
        b = gpu.get("peft_order_gpu/forward/" + case)
        r = real.get("peft_real/forward/" + case)
        tf, tg, tb, tr = seconds(f), seconds(g), seconds(b), seconds(r)
        floor = f.get("x_memory_floor") if tf else None
        host = f.get("host_us") if tf else None
        label = (f or {}).get("label", "") if tf else ((f or {}).get("error_message", "")[:60] if f else "")
        # Runs before the isolated_us counter timed every row alone: then the row time is that.
        fi = f.get("isolated_us", 0) * 1e-6 if tf and f.get("isolated_us") else (tf if tf and "isolated_us" not in f else None)
        bi = b.get("isolated_us", 0) * 1e-6 if tb and b.get("isolated_us") else (tb if tb and "isolated_us" not in b else None)
        md.append("| " + " | ".join([f"`{case}`", fmt(tf), fmt(tg), fmt(fi), fmt(bi), fmt(tb), fmt(tr), ratio(bi, fi),
                                      ratio(tr, tf), f"{floor:.2f}" if floor else "—", f"{host:.1f}" if host else "—",
                                      label]) + " |")
        # Goals compare like with like: PEFT order in the same isolated timing as ours.
        goals.append((case, tf, tg, bi if bi else tb, tr, floor, host, fi))

    # The issues' goals on the rows present.
    def judged(title, rows, test):
        ok = [c for c in rows if test(c)]
        md.append(f"- {title}: met in **{len(ok)} of {len(rows)}** rows measured" +
                  ("" if len(ok) == len(rows) else ": not met in " + ", ".join(f"`{c[0]}`" for c in rows if not test(c))[:1500]))

    gemv = [g for g in goals if g[1] and tokens_of(g[0]) <= 16 and "/f16" in g[0]]
    gemm = [g for g in goals if g[1] and tokens_of(g[0]) > 16 and "/f16" in g[0]]
    base_fmt = ("/linear/", "/hqq/", "/aqlm/", "/eetq/")
    md += ["", "## Goals on these rows", ""]
    judged("GEMV t1, ≤ 1.3× floor (fp16 linear, HQQ 4-bit, EETQ; AQLM is 1x16 here, gather-bound)",
           [g for g in gemv if tokens_of(g[0]) == 1 and g[0].startswith("none/") and "/aqlm/" not in g[0]],
           lambda g: g[5] is not None and g[5] <= 1.3)
    judged("GEMV t16, ≤ 2× floor", [g for g in gemv if tokens_of(g[0]) == 16], lambda g: g[5] is not None and g[5] <= 2.0)
    judged("GEMV never slower than PEFT order (t ≤ 16, isolated)", [g for g in gemv if g[3] and g[7]], lambda g: g[7] <= g[3])
    judged("GEMV t1 ≥ 5× faster than PEFT order on HQQ/AQLM/EETQ (isolated)",
           [g for g in gemv if tokens_of(g[0]) == 1 and g[3] and g[7] and "/linear/" not in g[0] and not g[0].startswith("none/")],
           lambda g: g[3] / g[7] >= 5)
    judged("GEMV ≥ 10× faster than the real PEFT", [g for g in gemv if g[4]], lambda g: g[4] / g[1] >= 10)
    judged("host cost per forward ≤ 10 µs", [g for g in goals if g[6] is not None], lambda g: g[6] <= 10)
    cublas = {}
    for g in gemm:
        m = re.match(r"none/linear/(\w+)/t(\d+)/f16", g[0])
        if m:
            cublas[(m.group(1), m.group(2))] = g[1]

    def vs_cublas(g):
        m = re.match(r"\w+/\w+/(\w+)/t(\d+)/f16", g[0])
        return cublas.get((m.group(1), m.group(2))) if m else None

    adapted = [g for g in gemm if not g[0].startswith("none/") and vs_cublas(g)]
    judged("GEMM t ≥ 512 with LoRA/OFT, ≤ 1.3× the plain cuBLAS GEMM (none/linear row)",
           [g for g in adapted if tokens_of(g[0]) >= 512], lambda g: g[1] <= 1.3 * vs_cublas(g))
    judged("GEMM t = 128 with LoRA/OFT, ≥ 70 % of the cuBLAS GEMM's throughput",
           [g for g in adapted if tokens_of(g[0]) == 128], lambda g: vs_cublas(g) / g[1] >= 0.7)
    judged("GEMM never slower than PEFT order (t > 16, isolated)", [g for g in gemm if g[3] and g[7]], lambda g: g[7] <= g[3])
    judged("GEMM ≥ 1.5× faster than the real PEFT (t ≥ 128)", [g for g in gemm if g[4] and tokens_of(g[0]) >= 128],
           lambda g: g[4] / g[1] >= 1.5)

    merges = sorted((k for k in gpu if k.startswith("optimized/merge/")), key=key)
    if merges:
        md += ["", "## Merges (wall time of one merge, weights resident)", "",
               "| case | ours | PEFT (real) | PEFT ÷ ours |", "|---|---|---|---|"]
        for k in merges:
            t = seconds(gpu[k])
            tr = seconds(real.get(k.replace("optimized/", "peft_real/")))
            md.append(f"| `{k}` | {fmt(t)} µs | {fmt(tr)} µs | {ratio(tr, t)} |")
    with open(a.out, "w") as out:
        out.write("\n".join(md) + "\n")
    print(f"gpu_report: wrote {a.out} ({len(cases)} forward cases, {len(merges)} merges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
