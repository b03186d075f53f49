#!/usr/bin/env python3
"""The real PEFT forward timed on a GPU: a third column for reports/gpu/benchmarks.md beside the
fused kernels and the PEFT-order baseline (bench/peft_order_gpu), for the formats whose library
runs on the device image (a plain torch Linear, and hqq carried as a wheel by
scripts/device-bundle.sh). Same cases as bench_optimized's float16 rows (same shapes, tokens, OFT
block size 32 and LoRA rank 16 with alpha 32; weights random, which does not change the time),
timed like the C++ benchmarks: CUDA events around 20 forwards under torch.no_grad, the median of
several such runs. Then PEFT's merges (LoRA into HQQ, with hqq's requantization on the device;
LoRA and OFT into nn.Linear), the baselines of bench_optimized's optimized/merge rows. Writes
Google-Benchmark-shaped JSON: peft_real/forward/<case>/f16 and peft_real/merge/<adapter>/<format>/n<features>.

    python3 bench/peft_gpu_timing.py --out peft_real.json [--device cuda] [--quick]
"""
import argparse
import json
import statistics
import sys
import time

import torch

SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008)]  # (out, in), as bench/layer_cases
TOKENS = [1, 8, 128, 2048]
OFT_BLOCK, LORA_RANK = 32, 16


def shape_name(out, inn):
    return f"n{out}" if out == inn else f"o{out}_i{inn}"


class Wrapped(torch.nn.Module):  # the one module PEFT's config targets
    def __init__(self, base):
        super().__init__()
        self.proj = base

    def forward(self, x):
        return self.proj(x)


def base_layer(fmt, out, inn, dtype, device):
    linear = torch.nn.Linear(inn, out, bias=True, dtype=dtype, device=device)
    if fmt == "linear":
        return linear
    from hqq.core.quantize import BaseQuantizeConfig, HQQLinear  # 4-bit, groups of 64, as the C++ bench
    return HQQLinear(linear, BaseQuantizeConfig(nbits=4, group_size=64, axis=1), compute_dtype=dtype, device=device)


def peft_model(adapter, base):
    from peft import LoraConfig, OFTConfig, get_peft_model
    if adapter == "lora":
        config = LoraConfig(r=LORA_RANK, lora_alpha=2 * LORA_RANK, target_modules=["proj"], init_lora_weights=False)
    else:
        config = OFTConfig(r=0, oft_block_size=OFT_BLOCK, target_modules=["proj"], init_weights=False)
    return get_peft_model(Wrapped(base), config).eval()


def seconds_per_forward(model, x, device, iterations=20, runs=5):
    with torch.no_grad():
        model(x)  # warm-up
        times = []
        for _ in range(runs):
            if device == "cuda":
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(iterations):
                    model(x)
                stop.record()
                stop.synchronize()
                times.append(start.elapsed_time(stop) * 1e-3 / iterations)
            else:  # a smoke run without a GPU
                t0 = time.perf_counter()
                for _ in range(iterations):
                    model(x)
                times.append((time.perf_counter() - t0) / iterations)
    return statistics.median(times)


def merge_layer(model):  # the one adapter layer PEFT put in place of the base
    from peft.tuners.tuners_utils import BaseTunerLayer
    return next(m for m in model.modules() if isinstance(m, BaseTunerLayer))


def seconds_per_merge(model, device, runs=5):
    """PEFT's merge of the adapter into its base as a user calls it: for HQQ that copies the layer,
    dequantizes, adds s*B*A and requantizes with hqq's optimizer, on the device the layer is on.
    Wall time with a synchronize on each side (the merge mixes host and device work, as the C++
    merge's wall time includes its uploads and downloads); each merge is undone before the next."""
    layer = merge_layer(model)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    times = []
    with torch.no_grad():
        layer.merge()  # warm-up
        layer.unmerge()
        for _ in range(runs):
            sync()
            t0 = time.perf_counter()
            layer.merge()
            sync()
            times.append(time.perf_counter() - t0)
            layer.unmerge()
    return statistics.median(times)


def time_row(case, seconds, unit, label):  # unit: "us" or "ms", as Google Benchmark writes it
    value = seconds * {"us": 1e6, "ms": 1e3}[unit]
    print(f"{case}: {value:.2f} {unit}")
    return {"name": case, "run_type": "iteration", "real_time": value, "time_unit": unit, "label": label}


def error_row(case, e):
    print(f"{case}: {type(e).__name__}: {e}", file=sys.stderr)
    return {"name": case, "run_type": "iteration", "error_occurred": True,
            "error_message": f"{type(e).__name__}: {e}"[:300]}


def time_merges(features, formats, device, label):
    """peft_real/merge/<adapter>/<format>/n<features>: beside bench_optimized's optimized/merge rows
    (HQQ 4-bit, groups of 64, axis 1; LoRA rank 16; OFT blocks of 32). PEFT cannot merge OFT into
    HQQ, so there is no oft/hqq row."""
    results = []
    for adapter, fmt in (("lora", "hqq"), ("lora", "linear"), ("oft", "linear")):
        if fmt not in formats:
            continue
        for n in features:
            case = f"peft_real/merge/{adapter}/{fmt}/n{n}"
            try:
                model = peft_model(adapter, base_layer(fmt, n, n, torch.float16, device))
                results.append(time_row(case, seconds_per_merge(model, device), "ms", label))
                del model
            except Exception as e:
                results.append(error_row(case, e))
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="one shape, 1 and 8 tokens, 256 features (a smoke run)")
    a = p.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("peft_gpu_timing: no CUDA device", file=sys.stderr)
        return 1
    import peft
    versions = {"peft": peft.__version__, "torch": torch.__version__}
    try:
        import hqq
        versions["hqq"] = getattr(hqq, "__version__", "?")
    except ImportError:
        pass
    label = torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu"
    shapes, tokens = ([(256, 256)], [1, 8]) if a.quick else (SHAPES, TOKENS)
    torch.manual_seed(20261123)
    formats = ("linear", "hqq") if "hqq" in versions else ("linear",)
    results = []
    for adapter in ("oft", "lora"):
        for fmt in formats:
            for out, inn in shapes:
                name = f"{adapter}/{fmt}/{shape_name(out, inn)}"
                try:
                    model = peft_model(adapter, base_layer(fmt, out, inn, torch.float16, a.device))
                except Exception as e:  # e.g. a PEFT wrapper that cannot be constructed (peft-oft-lora.md)
                    results += [error_row(f"peft_real/forward/{name}/t{t}/f16", e) for t in tokens]
                    continue
                for t in tokens:
                    x = torch.randn(t, inn, dtype=torch.float16, device=a.device)
                    case = f"peft_real/forward/{name}/t{t}/f16"
                    try:
                        results.append(time_row(case, seconds_per_forward(model, x, a.device), "us", label))
                    except Exception as e:
                        results.append(error_row(case, e))
                del model
    results += time_merges([256] if a.quick else [256, 1024, 4096], formats, a.device, label)
    with open(a.out, "w") as f:
        json.dump({"context": {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "device": label, **versions},
                   "benchmarks": results}, f, indent=1)
    print(f"peft_gpu_timing: wrote {a.out} ({len(results)} cases; {versions})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
