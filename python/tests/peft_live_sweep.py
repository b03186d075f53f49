"""The randomized live-layer sweep (issue 29): untouched real PEFT layers through qoracle.check_layer,
and the same layers with one planted fault each, which check_layer must catch. Outside CI, in the
exporter's venv with one PEFT release on PYTHONPATH (scripts/peft-live-sweep.sh runs every release).

A case: a seeded random layer kind (OFT exact / Cayley-Neumann / COFT / block_share, LoRA, rsLoRA,
DoRA, two adapters) on nn.Linear, hqq's HQQLinear or aqlm 1x16, a size up to 4096, a parameter
magnitude from PEFT's init (0) to rms 1, every dtype the base supports. Faults, each on a fresh
copy of the layer, x(1 + 1e-4) in float32/float64 and x(1 + 1e-2) in 16 bits:
  lora_output  lora_B's output (the adapter's contribution to the forward)
  delta_weight get_delta_weight (what merge, unmerge and delta_weight/<a> use)
  dequantize   the HQQ base's dequantize() (forward, merges)
  rotation     OFT's Cayley rotation R (forward and delta weight)
A fault whose effect on every output PEFT reports is below that output's stored tolerance (the
dtype rule of conformance/TOLERANCES.md: 1e-12, 1e-6, 1e-3, 8e-3 of its largest magnitude, PEFT's
own rounding noise) cannot be told from that noise by any judge at that tolerance; it is counted
apart, as "below the tolerance", with the size of its effect.

    python peft_live_sweep.py --seed 0 --count 40 --out results.json
    python peft_live_sweep.py --report results-0.21.2.json results-0.17.1.json ... > reports/peft-live-sweep.md
"""
import argparse
import json
import math
import os
import random
import sys
import time
import traceback

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
E = torch = qoracle = qpeft = None  # the sweep's libraries, imported by load_libraries (--report needs none)


def load_libraries():
    global E, torch, qoracle, qpeft
    import peft_import  # noqa: F401  (fixtures/export: lets PEFT 0.17.1 import under transformers 5)
    import torch as _torch

    import export_peft  # fixtures/export on PYTHONPATH: the exporter's layer builder
    import qoracle as _qoracle
    from qoracle import peft as _qpeft
    E, torch, qoracle, qpeft = export_peft, _torch, _qoracle, _qpeft

SIZES = [(64, 48), (256, 128), (512, 384), (1024, 1024), (4096, 4096)]
SIZE_WEIGHTS = [4, 4, 2, 1, 0.5]
MAGNITUDES = [0.0, 0.01, 0.1, 0.3, 1.0]


BASES = ["linear", "linear", "hqq", "hqq", "aqlm"]


def random_case(rng, index, seed):
    base = rng.choice(BASES)
    kind = rng.choice(["oft", "oft_neumann", "coft", "oft_share", "lora", "rslora", "dora", "two"])
    if base == "aqlm" and kind == "dora":
        kind = "lora"  # PEFT refuses DoRA on AQLM
    in_f, out_f = rng.choices(SIZES, weights=SIZE_WEIGHTS)[0]
    if base == "aqlm":
        in_f, out_f = min(in_f, 1024), min(out_f, 1024)
    std = rng.choice(MAGNITUDES)
    b = rng.choice([8, 16, 32, 64])
    r = rng.choice([4, 8, 16, 32])
    ad = {
        "oft": lambda: [E.oft("default", b=b, std=std)],
        "oft_neumann": lambda: [E.oft("default", b=b, neumann=True, terms=rng.randint(2, 8), std=std)],
        "coft": lambda: [E.oft("default", b=b, coft=True, eps=rng.choice([6e-5, 1e-2, 0.1]), std=std)],
        "oft_share": lambda: [E.oft("default", b=b, share=True, std=std)],
        "lora": lambda: [E.lora("default", r, 2 * r)],
        "rslora": lambda: [E.lora("default", r, 16, rslora=True)],
        "dora": lambda: [E.lora("default", r, 2 * r, dora=True)],
        "two": lambda: ([E.oft("first", b=b, std=std), E.oft("second", b=b, neumann=True, std=std)]
                        if rng.random() < 0.5 else [E.lora("first", r, 2 * r), E.lora("second", 8, 8)]),
    }[kind]()
    for a in ad:
        a.std = std
    lead = rng.choice([(3,), (2, 5), (1, 4, 3)])
    dtypes = {"linear": ("float64", "float32", "float16", "bfloat16"), "hqq": ("float32", "float16", "bfloat16"),
              "aqlm": ("float32", "float16")}[base]
    quant = dict(nbits=rng.choice([2, 4, 8]), group_size=64, axis=1) if base == "hqq" else None
    aqlm = E.aq(1, 16) if base == "aqlm" else None
    layer_kind = "oft/linear" if kind.startswith(("oft", "coft")) or (kind == "two" and ad[0].oft) else "lora/linear"
    case = E.Case(layer_kind, in_f, out_f, lead, rng.random() < 0.7, ad, seed * 1000 + index, dtypes, quant=quant,
                  aqlm=aqlm)
    return case, dict(base=base, kind=kind, size=f"{in_f}x{out_f}", std=std, block=b, r=r)


# --- planted faults ---------------------------------------------------------------------------------

def _scaled_module_output(module, factor):
    forward = module.forward
    module.forward = lambda *a, **k: forward(*a, **k) * factor


def plant(layer, fault, factor):
    """Plants the fault on the live layer; False where it does not apply to this layer."""
    base = layer.get_base_layer()
    if fault == "lora_output":
        if not getattr(layer, "lora_B", None):
            return False
        for b in layer.lora_B.values():
            _scaled_module_output(b, factor)
        return True
    if fault == "delta_weight":
        if not hasattr(layer, "get_delta_weight"):
            return False
        delta = layer.get_delta_weight
        layer.get_delta_weight = lambda name: delta(name) * factor
        return True
    if fault == "dequantize":
        if type(base).__name__ != "HQQLinear":
            return False
        deq = base.dequantize
        base.dequantize = lambda *a, **k: deq(*a, **k) * factor
        return True
    if fault == "rotation":
        if not getattr(layer, "oft_R", None):
            return False
        for m in layer.oft_R.values():
            cayley = m._cayley_batch
            m._cayley_batch = lambda *a, _c=cayley, **k: _c(*a, **k) * factor
        return True
    raise ValueError(fault)


FAULTS = ("lora_output", "delta_weight", "dequantize", "rotation")


RTOL = {"float64": 1e-12, "float32": 1e-6, "float16": 1e-3, "bfloat16": 8e-3}


def largest_effect(clean, faulty, dtype):
    """The fault's largest effect on an output PEFT reports, in units of that output's stored
    tolerance (delta weights are float32 in 16-bit layers, as PEFT keeps adapters)."""
    worst = 0.0
    for name, e in clean.expected.items():
        f = faulty.expected.get(name)
        if f is None or f.shape != e.shape or name.startswith(("requantize_input", "weight_after_forward")):
            continue
        e64, f64 = e.astype("float64"), f.astype("float64")
        scale = float(abs(e64).max()) if e64.size else 0.0
        rtol = RTOL["float32" if name.startswith("delta_weight") and dtype in ("float16", "bfloat16") else dtype]
        if scale:
            worst = max(worst, float(abs(f64 - e64).max()) / (rtol * scale))
    return worst


def report(paths):
    """The sweep's results as Markdown: per release, untouched layers and their FAIL rows, and what
    became of each planted fault."""
    import collections
    import re
    lines = ["# The live-layer sweep: untouched real PEFT layers, and planted faults", "",
             "Written by `scripts/peft-live-sweep.sh` (python/tests/peft_live_sweep.py --report). Each row is a",
             "randomized real PEFT layer (kind, base, size up to 4096, parameter magnitude from PEFT's init to",
             "rms 1, every dtype its base supports) through `qoracle.check_layer`; then the same layer with one",
             "planted fault at a time, x(1 + 1e-4) in float32/float64 and x(1 + 1e-2) in 16 bits, which",
             "check_layer must catch. A fault whose largest effect on any output PEFT reports is below that",
             "output's stored tolerance (PEFT's own rounding noise at that dtype) is counted apart.", ""]
    for path in paths:
        rows = json.load(open(path))
        if not rows:
            continue
        release = rows[0].get("peft", "?")
        checked = [r for r in rows if "fail" in r]
        refused = [r for r in rows if r.get("refused")]
        errors = [r for r in rows if r.get("error")]
        failing = [r for r in checked if r["fail"]]
        sizes = collections.Counter(re.search(r"_in(\d+)_out(\d+)_", r["case"]).group(0).strip("_") for r in checked)
        faults = collections.defaultdict(collections.Counter)
        for r in checked:
            for fault, verdict in r.get("faults", {}).items():
                faults[fault]["below the tolerance" if verdict.startswith("below") else verdict] += 1
        lines += [f"## PEFT {release}", "",
                  f"- untouched layers checked: {len(checked)} ({sum(r.get('rows', 0) for r in checked)} rows); "
                  f"**{len(failing)} with a FAIL**; {len(errors)} qoracle errors; {len(refused)} refused by PEFT or "
                  "the library (not counted)",
                  "- sizes: " + ", ".join(f"{k} x{v}" for k, v in sorted(sizes.items())),
                  "", "| fault | caught | missed | below the tolerance |", "|---|---|---|---|"]
        for fault in FAULTS:
            c = faults[fault]
            lines.append(f"| {fault} | {c['caught']} | {c['missed']} | {c['below the tolerance']} |")
        if failing or errors:
            lines += ["", "Untouched layers with a FAIL or an error:", ""]
            for r in failing + errors:
                lines.append(f"- `{r['case']}`: " + "; ".join(r.get("fail") or [r.get("error", "")])[:400])
        missed = [(r["case"], f) for r in checked for f, v in r.get("faults", {}).items() if v == "missed"]
        if missed:
            lines += ["", "Missed faults:", ""] + [f"- `{case}`: {fault}" for case, fault in missed]
        lines.append("")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--out")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--base", choices=("linear", "hqq", "aqlm"), help="draw only this base")
    ap.add_argument("--size", help="draw only this size, e.g. 4096x4096 (the widest layers are rare in the "
                                   "weighted draw because each costs minutes here)")
    ap.add_argument("--report", nargs="+", help="write the Markdown report of these result files and stop")
    args = ap.parse_args()
    if args.report:
        return report(args.report)
    if not args.out:
        ap.error("--out is required")
    if args.base:
        global BASES
        BASES = [args.base]
    if args.size:
        global SIZES, SIZE_WEIGHTS
        SIZES, SIZE_WEIGHTS = [tuple(int(n) for n in args.size.split("x"))], [1]
    load_libraries()
    torch.set_num_threads(1)
    import peft
    rng = random.Random(args.seed)
    results = []
    for i in range(args.count):
        case, info = random_case(rng, i, args.seed)
        for dtype in case.dtypes:
            row = dict(info, dtype=dtype, case=case.name(dtype), peft=peft.__version__)
            try:
                layer, x = E.build(case, dtype)
            except Exception as e:  # PEFT or the library refusing the configuration
                row["refused"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
                results.append(row)
                continue
            try:
                with torch.no_grad():
                    finite = bool(torch.isfinite(layer(x)).all())
            except Exception:  # PEFT's own forward raising: check_layer below records why
                finite = True
            if not finite:  # the layer itself overflows its dtype: nothing to judge
                row["refused"] = "PEFT's own forward is non-finite (the dtype overflows)"
                results.append(row)
                continue
            t0 = time.time()
            try:
                table = qoracle.check_layer(layer, x)
            except qoracle.Error as e:
                row["error"] = str(e)[:300]
                results.append(row)
                continue
            except Exception as e:  # PEFT's own forward or merge raising on this layer
                row["refused"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
                results.append(row)
                continue
            row["seconds"] = round(time.time() - t0, 2)
            row["fail"] = [f"{r.output}: {r.message[:240]}" for r in table.failures]
            row["rows"] = len(table)
            if not args.no_faults:
                factor = 1 + (1e-2 if dtype in ("float16", "bfloat16") else 1e-4)
                clean = table.case
                row["faults"] = {}
                for fault in FAULTS:
                    faulty, x2 = E.build(case, dtype)
                    if not plant(faulty, fault, factor):
                        continue
                    try:
                        faulty_case = qpeft.layer_case(faulty, x2)
                        caught = not qoracle.check(faulty_case)
                    except Exception:  # a fault that breaks PEFT itself counts as seen
                        caught, faulty_case = True, None
                    effect = 0.0 if faulty_case is None else largest_effect(clean, faulty_case, dtype)
                    row["faults"][fault] = ("caught" if caught else "missed" if effect > 1 else
                                            f"below the tolerance ({effect:.2g} of it)")
            results.append(row)
            print(json.dumps({k: row.get(k) for k in ("case", "fail", "faults", "refused", "error", "seconds")}),
                  file=sys.stderr, flush=True)
            with open(args.out, "w") as fh:  # after every layer: a sweep cut short keeps what it did
                json.dump(results, fh, indent=1)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
