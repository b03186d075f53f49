#!/usr/bin/env python3
"""Benchmark report: Google Benchmark JSON (reference and LibTorch baseline, run with repetitions)
plus the instruction counts -> reports/bench/README.md and PNG plots.

  report.py --reference R.json --torch T.json --icount I.json --icount-baseline B.json
            --merge-quality reports/hqq-merge-quality.md --out reports/bench
            [--previous-reference R0.json --previous-torch T0.json]

Times are medians over the repetitions. The ratio is LibTorch time / reference time from the
same run on the same machine (> 1: the reference is faster). Plots need matplotlib (Debian's
python3-matplotlib); without it the Markdown is still written.
"""
import argparse
import json
import os
import re
import sys

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load(path):
    """{name without the 'reference/' or 'torch/' prefix: median seconds}, and the context."""
    if not path or not os.path.exists(path):
        return {}, {}
    with open(path) as f:
        doc = json.load(f)
    medians, plain = {}, {}
    for b in doc.get("benchmarks", []):
        name = b.get("run_name", b["name"]).split("/", 1)[1]
        t = b["real_time"] * UNIT[b.get("time_unit", "ns")]
        if b.get("aggregate_name") == "median":
            medians[name] = t
        elif b.get("run_type", "iteration") == "iteration":
            plain.setdefault(name, t)
    for k, v in plain.items():  # a run without repetitions has no aggregates
        medians.setdefault(k, v)
    return medians, doc.get("context", {})


def fmt_time(t):
    if t is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def fmt_ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "—"


def split_case(name):
    """'forward/oft/hqq/n1024/t8' -> ('oft', 'hqq', 1024, 8)"""
    m = re.match(r"forward/(\w+)/(\w+)/n(\d+)/t(\d+)$", name)
    return (m.group(1), m.group(2), int(m.group(3)), int(m.group(4))) if m else None


def natural_key(name):
    """'cayley_exact/b16' sorts before 'cayley_exact/b128'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def merge_quality_rows(path):
    rows = []
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 6 and cells[0] in ("lora", "oft") and cells[1].isdigit():
                rows.append({"adapter": cells[0], "nbits": int(cells[1]), "group": int(cells[2]), "axis": int(cells[3]),
                             "merge_error": float(cells[5])})
    return rows


def plots(out, ref, torch, merge_rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib not found (Debian: python3-matplotlib); plots skipped", file=sys.stderr)
        return []
    written = []
    formats = ["linear", "hqq", "aqlm", "eetq"]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharex=True)
    for i, adapter in enumerate(["oft", "lora"]):
        for j, fmt in enumerate(formats):
            ax = axes[i][j]
            for n, color in ((256, "tab:blue"), (1024, "tab:orange"), (4096, "tab:red")):
                for data, style, who in ((ref, "-", "reference"), (torch, "--", "LibTorch")):
                    pts = sorted((c[3], t) for name, t in data.items() if (c := split_case(name))
                                 and c[0] == adapter and c[1] == fmt and c[2] == n)
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] * 1e3 for p in pts], style, color=color, marker="o",
                                label=f"{who} n{n}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{adapter} / {fmt}")
            if j == 0:
                ax.set_ylabel("forward time (ms)")
            if i == 1:
                ax.set_xlabel("tokens")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Forward time vs tokens (solid: reference, float64; dashed: LibTorch baseline, float32)")
    fig.tight_layout()
    path = os.path.join(out, "forward_time_vs_tokens.png")
    fig.savefig(path, dpi=90)
    written.append(path)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind, color in (("cayley_exact", "tab:blue"), ("cayley_neumann", "tab:green")):
        for data, style, who in ((ref, "-", "reference"), (torch, "--", "LibTorch")):
            pts = sorted((int(k.split("/b")[1]), t) for k, t in data.items() if k.startswith(kind + "/b"))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] * 1e6 for p in pts], style, color=color, marker="o",
                        label=f"{who} {kind}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("block size b")
    ax.set_ylabel("time per block (µs)")
    ax.set_title("Cayley per block: exact solve vs Neumann (5 terms)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "cayley_time_vs_block.png")
    fig.savefig(path, dpi=90)
    written.append(path)
    plt.close(fig)

    if merge_rows:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
        for ax, adapter in zip(axes, ["lora", "oft"]):
            for group, color in ((32, "tab:blue"), (64, "tab:orange"), (128, "tab:red")):
                for axis, style in ((1, "-"), (0, "--")):
                    pts = sorted((r["nbits"], r["merge_error"]) for r in merge_rows
                                 if r["adapter"] == adapter and r["group"] == group and r["axis"] == axis)
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, marker="o",
                                label=f"group {group}, axis {axis}")
            ax.set_yscale("log")
            ax.set_xlabel("HQQ bits")
            ax.set_title(f"{adapter}: merge error (requantized vs ideal)")
        axes[0].set_ylabel("||W_merged − W_ideal||_F / ||W_ideal||_F")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out, "hqq_merge_error_vs_bits.png")
        fig.savefig(path, dpi=90)
        written.append(path)
        plt.close(fig)
    return written


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", required=True)
    p.add_argument("--torch")
    p.add_argument("--icount")
    p.add_argument("--icount-baseline")
    p.add_argument("--merge-quality")
    p.add_argument("--previous-reference")
    p.add_argument("--previous-torch")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    ref, ctx = load(a.reference)
    torch, tctx = load(a.torch)
    prev_ref, _ = load(a.previous_reference)
    prev_torch, _ = load(a.previous_torch)
    os.makedirs(a.out, exist_ok=True)

    caches = ", ".join(f"L{c['level']} {c['type']} {c['size'] // 1024} KiB" for c in ctx.get("caches", []))
    md = ["# Benchmarks", "",
          "Written by `scripts/run-benchmarks.sh` (bench/report.py). Do not edit by hand.", "",
          f"- Machine: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz"
          f" ({caches}); run {ctx.get('date', '?')}. No GPU: these are CPU timings.",
          "- Reference: Eigen, float64, one thread. LibTorch baseline: Debian libtorch 1.13 (OpenBLAS), float32, "
          f"{tctx.get('torch_threads', '?')} intra-op thread(s), ATen ops in PEFT's order (bench/torch_baseline).",
          "- Times are medians of 3 repetitions (Google Benchmark). **Ratio = LibTorch time / reference time**, both from "
          "this run on this machine: above 1 the reference is faster. The reference is the oracle, not a fast "
          "path; the optimized CUDA kernels (issue 9) will take the \"ours\" column once a GPU runs them.",
          "- Wall times on a shared 2-core machine vary by tens of percent between runs; the CI gate uses "
          "instruction counts instead (below).", ""]

    def section(title, prefix, extra_cols=False):
        names = sorted((k for k in ref if k.startswith(prefix)), key=natural_key)
        if not names:
            return
        rows = []
        for k in names:
            r, t = ref.get(k), torch.get(k)
            row = [f"`{k}`", fmt_time(r), fmt_time(t), fmt_ratio(t, r)]
            if prev_ref or prev_torch:
                row += [fmt_ratio(r, prev_ref.get(k)), fmt_ratio(t, prev_torch.get(k))]
            rows.append(row)
        header = ["case", "reference", "LibTorch", "ratio"]
        if prev_ref or prev_torch:
            header += ["reference vs previous run", "LibTorch vs previous run"]
        md.extend([f"## {title}", "", table(rows, header), ""])

    section("Forward (OFT and LoRA on each format; n = in = out features, t = tokens)", "forward/")
    section("Merge then unmerge (linear, HQQ: requantizes twice) and EETQ's merge export", "merge/")
    section("Cayley per block (5 Neumann terms)", "cayley")
    md.append("Merges without a LibTorch time are merges PEFT does not have: its HqqOFTLinear.merge raises, and it "
              "refuses EETQ and AQLM merges (the EETQ rows are qoracle's export path, the OFT/HQQ rows the "
              "reference's math).\n")

    if a.icount and os.path.exists(a.icount):
        with open(a.icount) as f:
            now = json.load(f)["instructions"]
        base, threshold = {}, 0.03
        if a.icount_baseline and os.path.exists(a.icount_baseline):
            with open(a.icount_baseline) as f:
                b = json.load(f)
            base, threshold = b["instructions"], b.get("threshold", 0.03)
        rows = [[f"`{k}`", f"{base[k]:,}" if k in base else "—", f"{v:,}",
                 f"{(v / base[k] - 1) * 100:+.2f} %" if k in base else "new"] for k, v in sorted(now.items())]
        md.extend(["## Instruction counts (the CI gate)", "",
                   f"callgrind Ir of `bench/icount_workload` (a fixed short run of each case, 256 features, 8 tokens), "
                   f"against `reports/bench/icount-baseline.json`; CI (`ctest -R bench.icount_gate`) fails above "
                   f"+{threshold * 100:.0f} %. `reports/bench/planted-slowdown.md` shows it failing on a planted slowdown.",
                   "", table(rows, ["workload", "baseline", "this run", "change"]), ""])

    images = plots(a.out, ref, torch, merge_quality_rows(a.merge_quality))
    if images:
        md.append("## Plots\n")
        md.extend(f"![{os.path.basename(i)}]({os.path.basename(i)})\n" for i in images)
        md.append("The HQQ merge error comes from `reports/hqq-merge-quality.md` (`qoracle merge-quality`).\n")

    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write("\n".join(md))
    print(f"report: wrote {os.path.join(a.out, 'README.md')} and {len(images)} plot(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
