"""check_model and export_model on a whole transformers model, round-tripped through `qoracle check`;
outside CI (not collected by pytest), in a venv layered on the exporter's (torch, transformers, PEFT,
hqq, aqlm; qoracle's EETQ stand-in): scripts/check-peft-model.sh runs it.

A Llama-architecture model built from a LlamaConfig (random weights, no hub), every attention and MLP
projection adapted by get_peft_model; variants <base>-<adapter> (build_model): bases nn.Linear, hqq
(HQQLinear built directly), hqqcfg (transformers' HqqConfig route), aqlm (1x16, in groups of 8),
eetq (the CPU stand-in, float16); adapters lora, dora, oft, embed. For each variant:
  1. check_model(model, {"input_ids": ids}): every layer checked on the input it saw (--compare-serial:
     also with workers=1 first, rows equal to the bit, both wall times);
  2. export_model(same model, same inputs, folder) and `qoracle check folder`: the CLI's rows must
     equal check_model's (status and numbers, to the bit), layer by layer;
  3. (lora-embed) LoRA on the embedding too: a layer qoracle refuses is an ERROR row, never an
     exception, and export_model writes no file for it;
  4. (every *-lora variant) a planted fault: a hook adds 1e-3 (float16: 3e-2) to one layer's LoRA
     branch; check_model and the CLI on its export must FAIL exactly that layer and pass the others.
A variant transformers refuses to build (hqqcfg-* with transformers 5.23) is reported with its message
(--strict: as a failure). Prints one JSON object per variant (timings, verdicts) and each report's
summary on stderr.

    python peft_model_check.py --cli build-nocuda/qoracle --work /tmp/dir --variants lora,aqlm-oft,hqqcfg-lora
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import torch

import qoracle
from qoracle.peft import check_model, export_model
from peft_layers import same_row  # python/tests: a row and the CLI's JSON row, to the bit

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


BASES = ("hqq", "hqqcfg", "aqlm", "eetq")
AQLM_1X16 = dict(num_codebooks=1, nbits_per_codebook=16, in_group_size=8, out_group_size=1)


class TransformersRefused(Exception):
    """transformers would not build the variant's model: the variant is reported, not run."""


def replace_projections(model, make):
    """Every attention and MLP projection (an nn.Linear) replaced by make(linear)."""
    for module in list(model.modules()):
        for proj in PROJECTIONS:
            child = getattr(module, proj, None)
            if isinstance(child, torch.nn.Linear):
                setattr(module, proj, make(child))


def hqq_config_model(config, work):
    """The random model saved with save_pretrained and loaded back through transformers' own HQQ
    route: from_pretrained(quantization_config=HqqConfig(nbits=4, group_size=64), device_map="cpu"),
    offline. Raises TransformersRefused with transformers' own words where it refuses."""
    from transformers import AutoModelForCausalLM, HqqConfig, LlamaForCausalLM
    folder = os.path.join(work, "hqqconfig-random-llama")
    shutil.rmtree(folder, ignore_errors=True)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(folder)
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return AutoModelForCausalLM.from_pretrained(folder, quantization_config=HqqConfig(nbits=4, group_size=64),
                                                    device_map="cpu", dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 -- whatever transformers raises is the finding
        raise TransformersRefused(f"{type(e).__module__}.{type(e).__name__}: {e}") from e


def build_model(args, variant, seed=0):
    """The variant's PEFT model. Variants: <base>-<adapter>, base one of (none: nn.Linear), hqq
    (hqq's HQQLinear built directly), hqqcfg (transformers' HqqConfig route), aqlm (aqlm
    QuantizedLinear 1x16, in groups of 8, seeded valid tensors, float32), eetq (qoracle's CPU
    stand-in for EetqLinear, float16 model); adapter one of lora, dora, oft, embed (LoRA with the
    embedding targeted too)."""
    from peft import LoraConfig, OFTConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    base = variant.split("-")[0] if variant.split("-")[0] in BASES else "linear"
    config = LlamaConfig(hidden_size=args.hidden, intermediate_size=args.intermediate, num_hidden_layers=args.layers,
                         num_attention_heads=8, num_key_value_heads=8, vocab_size=1000, max_position_embeddings=256)
    if base == "hqqcfg":
        model = hqq_config_model(config, args.work).eval()
    else:
        model = LlamaForCausalLM(config).to(torch.float16 if base == "eetq" else torch.float32).eval()
    if base == "hqq":
        from hqq.core.quantize import BaseQuantizeConfig, HQQLinear
        replace_projections(model, lambda linear: HQQLinear(linear, BaseQuantizeConfig(nbits=4, group_size=64),
                                                            compute_dtype=torch.float32, device="cpu"))
    elif base == "aqlm":
        from aqlm_seeded import seeded_aqlm_layer  # fixtures/export, on PYTHONPATH (check-peft-model.sh)
        gen = torch.Generator().manual_seed(seed + 2)
        replace_projections(model, lambda linear: seeded_aqlm_layer(linear.in_features, linear.out_features, False,
                                                                    AQLM_1X16, torch.float32, gen))
    elif base == "eetq":
        import eetq  # fixtures/export/eetq_cpu_standin, on PYTHONPATH: the real library needs an sm70-sm89 GPU

        def eetq_layer(linear):
            layer = eetq.EetqLinear(linear.in_features, linear.out_features, bias=False, device="cpu")
            with torch.no_grad():
                layer.load_float_weight(linear.weight)
            return layer
        replace_projections(model, eetq_layer)
    adapter = variant.split("-")[-1]
    targets = PROJECTIONS + (["embed_tokens"] if adapter == "embed" else [])  # a LoRA Embedding: qoracle refuses it
    adapter = "lora" if adapter == "embed" else adapter
    if adapter == "oft":
        peft_config = OFTConfig(r=0, oft_block_size=32, target_modules=targets, init_weights=False)
    else:  # init_lora_weights=False: B is random too, so every LoRA branch contributes
        peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets,
                                 init_lora_weights=False, use_dora=adapter == "dora")
    model = get_peft_model(model, peft_config).eval()
    if adapter == "dora":  # a trained magnitude differs from the initial row norms
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for module in model.modules():
                for m in getattr(module, "lora_magnitude_vector", {}).values():
                    m.weight.mul_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
    return model


def cli_rows(cli, folder):
    run = subprocess.run([cli, "check", folder, "--json", "--no-report", "--no-optimized"], capture_output=True, text=True)
    try:
        rows = json.loads(run.stdout)["rows"]
    except (ValueError, KeyError):
        raise SystemExit(f"qoracle check {folder}: exit {run.returncode}, no JSON: {run.stderr[-2000:]}")
    out = {}
    for r in rows:  # export_model names a case '<module name>__<parameters>'
        out.setdefault(r["case"].split("__")[0], {})[r["output"]] = r
    return out


def disagreements(report, theirs):
    """Layers where check_model's rows and the CLI's differ (a missing row included)."""
    bad = []
    for row in report:
        cli = theirs.get(row.name, {})
        if row.table is None:
            if cli:
                bad.append(f"{row.name}: refused here, {len(cli)} CLI rows")
            continue
        mine = {r.output: r for r in row.table}
        if set(mine) != set(cli) or not all(same_row(r, cli.get(o)) for o, r in mine.items()):
            bad.append(f"{row.name}: {sorted(set(mine) ^ set(cli)) or 'numbers or status differ'}")
    return bad


def timed_forward(model, inputs, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            model(**inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def same_rows(a, b):
    """check_model's rows of two reports equal, status and numbers to the bit, in the same order."""
    def rows(report):
        return [(r.name, r.verdict, None if r.table is None else
                 [(row.output, row.status, row.max_abs_error, row.error_vs_oracle, row.allowed) for row in r.table])
                for r in report]
    return rows(a) == rows(b)


def run_variant(args, variant):
    start = time.perf_counter()
    try:
        model = build_model(args, variant)
    except TransformersRefused as e:
        print(f"--- {variant}: transformers refused: {e}", file=sys.stderr)
        return dict(variant=variant, refused_by_transformers=str(e), ok=not args.strict)
    build_seconds = time.perf_counter() - start
    gen = torch.Generator().manual_seed(1)
    inputs = {"input_ids": torch.randint(0, 1000, (args.batch, args.seq), generator=gen)}
    plain = timed_forward(model, inputs)
    serial, timings = None, {"serial": [], "parallel": []}  # (wall s, process CPU s) of each check_model call

    def timed_check(workers):
        wall, cpu = time.perf_counter(), time.process_time()
        report = check_model(model, inputs, max_tokens=args.max_tokens, progress=not args.quiet, workers=workers)
        timings["serial" if workers == 1 else "parallel"].append(
            (round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)))
        return report

    # --compare-serial: the same check one layer after the other (check_model before issue 31 item 3),
    # alternating with the parallel one --repeats times: on a shared machine the load drifts.
    for _ in range(args.repeats if args.compare_serial else 1):
        if args.compare_serial:
            serial = timed_check(1)
        report = timed_check(args.workers)
    total = statistics.median(t[0] for t in timings["parallel"])
    print(f"--- {variant}\n{report.summary()}", file=sys.stderr)
    folder = os.path.join(args.work, variant)
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    written = export_model(model, inputs, folder, max_tokens=args.max_tokens)
    export_seconds = time.perf_counter() - start
    start = time.perf_counter()
    theirs = cli_rows(args.cli, folder)
    cli_seconds = time.perf_counter() - start
    peft_side = sum(r.peft_seconds for r in report)
    result = dict(variant=variant, layers=len(report), passed=sum(r.passed for r in report),
                  verdicts={r.name: r.verdict for r in report}, kinds=sorted({r.kind for r in report}),
                  dtypes=sorted({r.dtype for r in report}), tokens=sorted({r.tokens for r in report}),
                  worst=[(r.name, r.worst, r.ratio) for r in sorted(report, key=lambda r: -r.ratio)[:3]],
                  seconds_per_layer={r.name: round(r.seconds, 3) for r in report},
                  peft_seconds_per_layer={r.name: round(r.peft_seconds, 3) for r in report},
                  build_s=round(build_seconds, 2), forward_plain_s=round(plain, 4),
                  forward_hooked_s=round(report.forward_seconds, 4), workers=report.workers,
                  check_wall_s=round(report.wall_seconds, 2), layer_seconds_sum=round(report.check_seconds, 2),
                  peft_side_s=round(peft_side, 2), check_model_s=round(total, 2),
                  ratio_to_peft=round(total / peft_side, 2) if peft_side else None,
                  export_model_s=round(export_seconds, 2), cli_check_s=round(cli_seconds, 2),
                  exported=sum(os.path.exists(p) for p in written.values()),
                  disagreements=disagreements(report, theirs))
    result["timings"] = timings
    if serial is not None:
        serial_total = statistics.median(t[0] for t in timings["serial"])
        result.update(serial_check_model_s=round(serial_total, 2), serial_check_wall_s=round(serial.wall_seconds, 2),
                      serial_peft_side_s=round(sum(r.peft_seconds for r in serial), 2),
                      serial_seconds_per_layer={r.name: round(r.seconds, 3) for r in serial},
                      serial_reference_s=round(serial.check_seconds - sum(r.peft_seconds for r in serial), 2),
                      serial_ratio_to_peft=round(serial_total / max(sum(r.peft_seconds for r in serial), 1e-9), 2),
                      speedup=round(serial_total / total, 2), serial_rows_equal=same_rows(serial, report))
    # lora-embed: the LoRA Embedding must be a refused (ERROR) row with no file, every projection still checked
    refused = [r.name for r in report if r.name.endswith("embed_tokens")]
    result["refused"] = {r.name: r.error for r in report if r.verdict == "ERROR"}
    result["ok"] = (all(r.passed for r in report if r.name not in refused) and sorted(result["refused"]) == refused
                    and (variant.endswith("embed") == bool(refused)) and not result["disagreements"]
                    and result["exported"] == len(report) - len(refused) == len(theirs)
                    and result.get("serial_rows_equal", True))
    if variant.split("-")[-1] == "lora" and args.plant:
        result["planted"] = planted_fault(args, model, inputs, variant)
        result["ok"] = result["ok"] and result["planted"]["caught"]
    return result


def planted_fault(args, model, inputs, variant):
    """1e-3 (float16: 3e-2) added to one layer's LoRA branch (a hook on its lora_B): check_model and the CLI on the
    export must FAIL that layer, and only it."""
    target = next(name for name, _ in model.named_modules() if name.endswith(f"layers.{min(1, args.layers - 1)}.mlp.up_proj"))
    layer = model.get_submodule(target)
    # PEFT keeps adapter weights in float32; the model's dtype says how coarse the outputs are
    fault = 1e-3 if model.get_input_embeddings().weight.dtype == torch.float32 else 3e-2
    handle = layer.lora_B["default"].register_forward_hook(lambda module, inputs_, output: output + fault)
    try:
        report = check_model(model, inputs, max_tokens=args.max_tokens, progress=False)
        folder = os.path.join(args.work, f"{variant}-planted")
        shutil.rmtree(folder, ignore_errors=True)
        export_model(model, inputs, folder, max_tokens=args.max_tokens)
    finally:
        handle.remove()
    theirs = cli_rows(args.cli, folder)
    failed_here = [r.name for r in report if not r.passed]
    failed_cli = sorted(n for n, rows in theirs.items() if any(r["status"] != "PASS" for r in rows.values()))
    print(f"--- {variant}, planted fault in {target}\n{report.summary(worst=3)}", file=sys.stderr)
    return dict(target=target, fault=fault, failed_check_model=failed_here, failed_cli=failed_cli,
                caught=failed_here == [target] and failed_cli == [target])


def main():
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True, help="a built qoracle")
    ap.add_argument("--work", required=True, help="a folder for the exported cases")
    ap.add_argument("--variants", default="lora,dora,oft,hqq-lora,hqq-dora,hqq-oft,lora-embed,"
                    "aqlm-lora,aqlm-oft,eetq-lora,eetq-oft,hqqcfg-lora,hqqcfg-dora,hqqcfg-oft")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--intermediate", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--no-plant", dest="plant", action="store_false")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--workers", type=int, default=None, help="check_model's workers (default: every core)")
    ap.add_argument("--compare-serial", action="store_true",
                    help="also check with workers=1 first: the wall times before/after and rows equal to the bit")
    ap.add_argument("--repeats", type=int, default=1, help="with --compare-serial: serial and parallel checks alternated "
                    "this many times (medians reported)")
    ap.add_argument("--strict", action="store_true", help="a variant transformers refuses to build fails the run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ok = True
    for variant in args.variants.split(","):
        result = run_variant(args, variant)
        print(json.dumps(result), flush=True)
        ok = ok and result["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
