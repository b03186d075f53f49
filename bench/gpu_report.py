#!/usr/bin/env python3
"""The GPU benchmark report: reports/gpu/benchmarks.md from what bench_optimized printed on a device
(scripts/gpu-verify.sh bench -> optimized.json). One row per forward case: the fused kernels'
time, the PEFT-order baseline's (bench/peft_order_gpu) from the same run, the speedup, the weight
bandwidth the fused kernels reached and their time over the memory floor (the quantized weight
bytes read at the device's measured copy bandwidth). Then the GPU merges (HQQ, plain linear, EETQ)
beside the real PEFT's merges on the same device (bench/peft_gpu_timing.py) and the LibTorch CPU
merges of reports/bench/torch.json, with both machines named.

    python3 bench/gpu_report.py --gpu optimized.json [--torch reports/bench/torch.json] --out reports/gpu/benchmarks.md
"""
import argparse
import json
import re
import sys

AIM_SPEEDUP, AIM_FLOOR = 5.0, 1.3  # issue 9's aims at 1 token
AIM_MERGE = 20.0  # and for the HQQ merge of a 4096 x 4096 layer


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data.get("benchmarks", []):  # aggregates keep their own names (..._median)
        rows[re.sub(r"/manual_time$", "", b["name"])] = b
    return rows, data.get("context", {})


def seconds(b):
    if not b or b.get("error_occurred"):
        return None
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def fmt_time(t):
    if t is None:
        return "—"
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def case_key(name):
    parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    return [(0, p) if isinstance(p, int) else (1, p) for p in parts]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", required=True, help="bench_optimized's JSON from the device")
    p.add_argument("--torch", help="the CPU benchmarks' LibTorch JSON (for the merge)")
    p.add_argument("--peft-real", help="bench/peft_gpu_timing.py's JSON from the same device")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    gpu, ctx = load(a.gpu)
    torch, tctx = load(a.torch) if a.torch else ({}, {})
    real, rctx = load(a.peft_real) if a.peft_real else ({}, {})
    fused = sorted((k[len("optimized/forward/"):] for k in gpu if k.startswith("optimized/forward/")), key=case_key)
    if not fused:
        print(f"gpu_report: no optimized/forward results in {a.gpu}", file=sys.stderr)
        return 1
    device = next((b.get("label") for b in gpu.values() if b.get("label")), "?")
    copy = next((b.get("copy_GBps") for b in gpu.values() if b.get("copy_GBps")), None)

    rows, met, judged = [], 0, 0
    for case in fused:
        f, base = gpu.get("optimized/forward/" + case), gpu.get("peft_order_gpu/forward/" + case)
        tf, tb = seconds(f), seconds(base)
        speedup = tb / tf if tf and tb else None
        floor = f.get("x_memory_floor") if tf else None
        gbps = f.get("bytes_per_second", 0) * 1e-9 if tf else None
        aim = ""
        if re.search(r"/t1(/|$)", case) and speedup and floor:
            judged += 1
            ok = speedup >= AIM_SPEEDUP and floor <= AIM_FLOOR
            met += ok
            aim = "yes" if ok else "no"
        row = [f"`{case}`", fmt_time(tf), fmt_time(tb), f"{speedup:.2f}×" if speedup else "—"]
        if real:
            tr = seconds(real.get("peft_real/forward/" + case))
            row += [fmt_time(tr), f"{tr / tf:.2f}×" if tr and tf else "—"]
        rows.append(row + [f"{gbps:.0f}" if gbps else "—", f"{floor:.2f}" if floor else "—", aim])

    md = ["# GPU benchmarks (issue 9)", "",
          "Written by `bench/gpu_report.py` from `bench_optimized`'s JSON (`scripts/gpu-verify.sh bench`). "
          "Do not edit by hand.", "",
          f"- Device: **{device}**; run {ctx.get('date', '?')} on host {ctx.get('host_name', '?')}; measured copy "
          f"bandwidth {copy:.0f} GB/s." if copy else f"- Device: **{device}**; run {ctx.get('date', '?')}.",
          "- Times are device times by CUDA events (20 launches per iteration, weights and activations "
          "resident). **Speedup = PEFT-order time / fused time**, both from this run. The PEFT-order baseline "
          "(bench/peft_order_gpu) runs PEFT's ops one launch each on cuBLAS: Cayley every forward, the "
          "rotation as a batched GEMM, W dequantized in full every forward, cuBLAS GEMM, LoRA's two GEMMs.",
          "- For EETQ and for AQLM at few tokens the real libraries have fused kernels of their own, so PEFT's "
          "base forward there is faster than this baseline's: read those speedups as over PEFT's op order, not "
          "over the shipped library.",
          f"- × floor = fused time ÷ (weight bytes ÷ copy bandwidth); 1 is reading the weights once at copy speed. "
          f"Aim at 1 token: speedup ≥ {AIM_SPEEDUP:g}× and × floor ≤ {AIM_FLOOR:g}; met in {met} of {judged} cases.",
          "- Case names: adapter/format/shape/tokens; o<out>_i<in> for non-square shapes; /f16 = float16 "
          "activations, otherwise float32.", ""]
    header = ["case", "fused", "PEFT-order", "speedup"]
    if real:
        md.insert(-1, f"- PEFT (real): the real PEFT forward on the same device (bench/peft_gpu_timing.py: "
                      f"peft {rctx.get('peft', '?')}, torch {rctx.get('torch', '?')}, hqq {rctx.get('hqq', '—')}), "
                      "float16, plain Linear and HQQ only; — where it did not run (the JSON says why).")
        header += ["PEFT (real)", "vs real"]
    header += ["fused GB/s", "× floor", "aim (t1)"]
    md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]

    merges = sorted((k for k in gpu if k.startswith("optimized/merge/")), key=case_key)
    if merges:
        md += ["", "## Merges (HQQ: dequantize, + s·B·A or · R_bdᵀ, requantize with the proximal optimizer; "
               "linear: the merged float32 weight; EETQ: dequantize, merge, requantize with EETQ's quantizer)", "",
               f"Ours: the whole layer in one launch sequence, wall time with uploads and downloads, on {device}. "
               "PEFT (real, GPU): the adapter layer's merge() on the same device, weights resident, wall time "
               "(bench/peft_gpu_timing.py; for HQQ: copy the layer, dequantize, add the delta, hqq's quantize). "
               f"LibTorch CPU: the baseline's PEFT-order merge from `reports/bench/torch.json`, on "
               f"{tctx.get('host_name', '?')} ({tctx.get('num_cpus', '?')} CPUs): a different machine, so that ratio "
               "compares the two paths as a user would run them, not the same hardware. oft/hqq and the EETQ rows "
               "(requantized to int8 with float16 scales) have no baseline: PEFT's HqqOFTLinear.merge raises and "
               "PEFT refuses every EETQ merge (reports/peft-deviations.md). "
               f"Aim: the HQQ merge ≥ {AIM_MERGE:g}× faster than PEFT's GPU merge at 4096×4096.", "",
               "| case | ours (GPU) | PEFT (real, GPU) | ratio | LibTorch CPU | ratio | aim (HQQ n4096) |",
               "|---|---|---|---|---|---|---|"]
        ratio = lambda t, ours: f"{t / ours:.1f}×" if t and ours else "—"
        for k in merges:
            tg = seconds(gpu[k])
            tr = seconds(real.get(k.replace("optimized/", "peft_real/")))
            tt = seconds(torch.get(k.replace("optimized/", "torch/") + "_median") or torch.get(k.replace("optimized/", "torch/")))
            aim = ("yes" if tr / tg >= AIM_MERGE else "no") if "/hqq/n4096" in k and tg and tr else ""
            md.append(f"| `{k}` | {fmt_time(tg)} | {fmt_time(tr)} | {ratio(tr, tg)} | {fmt_time(tt)} | {ratio(tt, tg)} | {aim} |")
    with open(a.out, "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"gpu_report: wrote {a.out} ({len(rows)} forward cases, aim met in {met} of {judged})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
