"""check_layer and export_case on real PEFT layers of every kind the exporter builds, round-tripped
through `qoracle check`; outside CI, in the exporter's venv (scripts/check-peft-layers.sh runs it).

For every case of fixtures/export/export_peft.py (the same seeded layers as fixtures/peft):
  1. qoracle.check_layer(layer, x): the layer read and checked in-process;
  2. qoracle.export_case(same layer rebuilt, x, file): the case written as a fixture, and
     `qoracle check` run on those files: its rows must equal check_layer's (status and numbers);
  3. the expected outputs layer_case read must equal those the exporter committed for the case.
Prints one JSON object (the numbers scripts/check-peft-layers.sh puts in its report).

    python peft_layers.py --cli build/qoracle --committed fixtures/peft/peft-0.21.2 --work /tmp/dir

With --grads, the same for fixtures/export/export_gradients.py's cases (the layers behind
fixtures/peft/peft-<version>/gradients; --core: the older releases' subset):
check_layer(layer, x, grads=True) with the committed G and the case seed (so the dropout noise is
the committed one), the rows against `qoracle check` on export_case's files, and the expected
outputs (gradients included) against the committed ones.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import traceback

import numpy as np

import qoracle


def cli_rows(cli, folder):
    run = subprocess.run([cli, "check", folder, "--json", "--no-report", "--no-optimized"], capture_output=True, text=True)
    rows = {}
    for r in json.loads(run.stdout)["rows"]:
        rows[(r["case"], r["output"])] = r
    return rows


def same_row(mine, theirs):
    """check_layer's row and the CLI's JSON row for the same output say the same, to the bit."""
    if theirs is None or mine.status != theirs["status"]:
        return False
    if mine.rule == "fp64-referee":
        return mine.error_vs_oracle == theirs["error_vs_fp64"] and mine.allowed == theirs["allowed"]
    return mine.max_abs_error == theirs["max_abs_error"] and mine.allowed == theirs["allowed"]


def committed_case(folder, kind, dtype, name, cache={}):
    path = os.path.join(folder, f"{kind.replace('/', '_')}_{dtype}.h5")
    if path not in cache:
        cache[path] = {c.name: c for c in qoracle.load(path)} if os.path.exists(path) else {}
    return cache[path].get(name)


def main():
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # aqlm's CPU kernel races with more threads
    global export_peft
    import export_peft  # fixtures/export on PYTHONPATH: the exporter's case table and layer builder
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--committed", required=True, help="fixtures/peft/peft-<version> of this PEFT")
    ap.add_argument("--work", required=True, help="an empty folder for the exported files")
    ap.add_argument("--filter", default="")
    ap.add_argument("--grads", action="store_true", help="export_gradients.py's cases, with grads=True")
    ap.add_argument("--core", action="store_true", help="with --grads: the older releases' subset")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.grads:
        return main_grads(args)
    tables, refused, differing = {}, [], []
    stats = collections.defaultdict(collections.Counter)
    for case in export_peft.CASES:
        for dtype in case.dtypes:
            name = case.name(dtype)
            if args.filter not in name:
                continue
            key = f"{case.layer_kind} {dtype}"
            try:
                layer, x = export_peft.build(case, dtype)
                table = qoracle.check_layer(layer, x, name=name)
                again, x2 = export_peft.build(case, dtype)
                qoracle.export_case(again, x2, os.path.join(args.work, name + ".h5"), name=name)
            except qoracle.Error:
                raise  # qoracle failing to read a layer is a bug here, not a finding
            except Exception as e:  # PEFT or the library refusing: the exporter's failures.json has these too
                refused.append({"case": name, "exception": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"})
                stats[key]["refused"] += 1
                continue
            tables[name] = table
            s = stats[key]
            s["cases"] += 1
            s["rows"] += len(table)
            s["rows passed"] += sum(r.passed for r in table)
            committed = committed_case(args.committed, case.layer_kind, dtype, name)
            if committed is None:
                s["not committed"] += 1
                continue
            ours = table.case.expected
            for out, want in committed.expected.items():
                if out in ours:
                    s["outputs compared"] += 1
                    s["outputs identical"] += int(np.array_equal(ours[out], want))
                    if not np.array_equal(ours[out], want):
                        diff = float(np.abs(ours[out].astype(np.float64) - want).max())
                        differing.append({"case": name, "output": out, "max_abs_diff": diff,
                                          "max_abs": float(np.abs(want).max()), "merge_adapters": committed.merge_adapters})
    theirs = cli_rows(args.cli, args.work)
    disagreements = []
    for name, table in tables.items():
        key = f"{table.case.layer_kind} {table.case.dtype}"
        for row in table:
            agree = same_row(row, theirs.get((name, row.output)))
            stats[key]["rows agreeing with qoracle check"] += int(agree)
            if not agree:
                disagreements.append(f"{name} {row.output}")
        for row in table.failures:
            print(f"check_layer FAIL {name} {row.output}: {row.message}", file=sys.stderr)
    failures = sum(s["rows"] - s["rows passed"] for s in stats.values())
    json.dump({"peft": export_peft.peft.__version__, "committed": args.committed, "stats": stats, "refused": refused,
               "cli_rows": len(theirs), "disagreements": disagreements, "differing": differing},
              sys.stdout, indent=1, sort_keys=True)
    return 1 if disagreements or failures else 0


def committed_gradient_case(folder, kind, dtype, name, cache={}):
    path = os.path.join(folder, "gradients", f"gradients_{kind.replace('/', '_')}_{dtype}.h5")
    if path not in cache:
        cache[path] = {c.name: c for c in qoracle.load(path)} if os.path.exists(path) else {}
    return cache[path].get(name)


def main_grads(args):
    """check_layer(..., grads=True) on every gradient case; prints the same JSON as main()."""
    import torch
    import export_gradients
    tables, refused, differing = {}, [], []
    stats = collections.defaultdict(collections.Counter)
    cases = export_gradients.core(export_gradients.CASES) if args.core else export_gradients.CASES
    for gc in cases:
        for dtype in gc.case.dtypes:
            name = gc.name(dtype)
            if args.filter not in name:
                continue
            kind = gc.case.layer_kind
            key = f"{kind} {dtype} grads"
            committed = committed_gradient_case(args.committed, kind, dtype, name)
            G = None
            if committed is not None:
                G = torch.from_numpy(committed.grad_output).to(export_gradients.TORCH_DTYPE[dtype])
            try:
                layer, x = export_gradients.build_layer(gc, dtype)
                table = qoracle.check_layer(layer, x, name=name, grads=True, grad_output=G, seed=gc.case.seed)
                again, x2 = export_gradients.build_layer(gc, dtype)
                qoracle.export_case(again, x2, os.path.join(args.work, name + ".h5"), name=name, grads=True,
                                    grad_output=G, seed=gc.case.seed)
            except qoracle.Error:
                raise
            except Exception as e:  # PEFT or the library refusing: the exporter's failures.json has these too
                refused.append({"case": name, "exception": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"})
                stats[key]["refused"] += 1
                continue
            tables[name] = table
            s = stats[key]
            s["cases"] += 1
            s["rows"] += len(table)
            s["rows passed"] += sum(r.passed for r in table)
            if committed is None:
                s["not committed"] += 1
                continue
            ours = table.case.expected
            for out, want in committed.expected.items():
                if out in ours:
                    s["outputs compared"] += 1
                    s["outputs identical"] += int(np.array_equal(ours[out], want))
                    if not np.array_equal(ours[out], want):
                        diff = float(np.abs(ours[out].astype(np.float64) - want).max())
                        differing.append({"case": name, "output": out, "max_abs_diff": diff,
                                          "max_abs": float(np.abs(want).max()), "merge_adapters": []})
    theirs = cli_rows(args.cli, args.work)
    disagreements = []
    for name, table in tables.items():
        key = f"{table.case.layer_kind} {table.case.dtype} grads"
        for row in table:
            agree = same_row(row, theirs.get((name, row.output)))
            stats[key]["rows agreeing with qoracle check"] += int(agree)
            if not agree:
                disagreements.append(f"{name} {row.output}")
        for row in table.failures:
            print(f"check_layer FAIL {name} {row.output}: {row.message}", file=sys.stderr)
    failures = sum(s["rows"] - s["rows passed"] for s in stats.values())
    json.dump({"peft": export_gradients.peft.__version__, "committed": os.path.join(args.committed, "gradients"),
               "stats": stats, "refused": refused, "cli_rows": len(theirs), "disagreements": disagreements,
               "differing": differing}, sys.stdout, indent=1, sort_keys=True)
    return 1 if disagreements or failures else 0


def report(paths):
    """reports/python-peft-layers.md from the JSON of each PEFT release's run."""
    runs = [json.load(open(p)) for p in paths]
    print("# check_layer and export_case on real PEFT layers\n")
    print("Written by `scripts/check-peft-layers.sh` (python/tests/peft_layers.py) in the exporter's venv "
          "(fixtures/export/export.sh: torch, PEFT, hqq, aqlm on the CPU; EETQ through qoracle's CPU stand-in). "
          "For every layer fixtures/export/export_peft.py builds (the seeded layers behind fixtures/peft), "
          "`qoracle.check_layer(layer, x)` read the live layer and checked it; `qoracle.export_case` wrote the same "
          "layer, rebuilt, as a fixture file, and `qoracle check --json` on those files had to give the same rows "
          "(status, largest error and allowed bound, to the bit); the outputs check_layer read were compared with "
          "the ones the exporter committed for the same case (merge outputs where the exporter merged only some "
          "adapters excepted: check_layer merges the active ones).\n")
    if any(run["committed"].endswith("gradients") for run in runs):
        print("Gradient runs (`peft_layers.py --grads`; rows `<kind> <dtype> grads`): the layers of "
              "fixtures/export/export_gradients.py, `check_layer(layer, x, grads=True)` with the committed G and the "
              "case seed (so the dropout noise is the committed one); outputs compared with "
              "fixtures/peft/peft-<version>/gradients/, gradients included. The merge rows are check_layer's own "
              "(the gradient fixtures hold no merges).\n")
    for run in runs:
        stats = run["stats"]
        total = collections.Counter()
        for s in stats.values():
            total.update(s)
        print(f"## PEFT {run['peft']}\n")
        print(f"**{total['cases']} layers checked, {total['rows passed']} / {total['rows']} check_layer rows passed, "
              f"{total['rows agreeing with qoracle check']} / {total['rows']} equal to `qoracle check`'s on the exported "
              f"file, {total['outputs identical']} / {total['outputs compared']} outputs identical to the committed "
              f"fixture's; {total['refused']} refused by PEFT or the library.**\n")
        print("| layer kind, dtype | layers | check_layer rows passed | equal to `qoracle check` | outputs identical to "
              "fixtures/peft | refused |\n|---|---|---|---|---|---|")
        for key in sorted(stats):
            s = collections.Counter(stats[key])
            print(f"| {key} | {s['cases']} | {s['rows passed']} / {s['rows']} | {s['rows agreeing with qoracle check']} "
                  f"/ {s['rows']} | {s['outputs identical']} / {s['outputs compared']} | {s['refused']} |")
        failures = os.path.join(run["committed"], "failures.json")
        listed = {f["case"] for f in json.load(open(failures))["failures"]} if os.path.exists(failures) else set()
        ours = {r["case"] for r in run["refused"]}
        print(f"\nRefused: {len(ours)} cases, " + ("the same as the exporter's failures.json." if ours == listed else
              f"failures.json lists {len(listed)}; only here: {sorted(ours - listed)}, only there: {sorted(listed - ours)}."))
        if run["differing"]:
            by_case = collections.defaultdict(list)
            for d in run["differing"]:
                by_case[d["case"]].append(d)
            print(f"\nOutputs that differ from the committed fixture's ({len(run['differing'])} in {len(by_case)} cases; "
                  "largest difference relative to max|committed|):\n")
            print("| case | merged by the exporter | outputs | largest relative difference |\n|---|---|---|---|")
            for case, ds in sorted(by_case.items()):
                rel = max(d["max_abs_diff"] / d["max_abs"] if d["max_abs"] else d["max_abs_diff"] for d in ds)
                merged = ",".join(ds[0]["merge_adapters"]) or "the active adapters"
                print(f"| `{case}` | {merged} | {', '.join(d['output'] for d in ds)} | {rel:.1e} |")
        if run["disagreements"]:
            print("\nRows where check_layer and `qoracle check` differ:\n")
            for d in run["disagreements"]:
                print(f"- {d}")
        print()
    print("## Reading the differences\n")
    print("- Merge outputs of the cases whose exporter merged only some of the active adapters (`merge_adapters`): "
          "check_layer merges all active adapters, so its merge is another one. Both pass.\n"
          "- `forward`/`forward_disabled` of the float32 AQLM layers with 256-entry codebooks, which run aqlm's numba "
          "kernel: they differ from the committed values by about 1-2 float32 ulps of max|y| (column above), inside "
          "the 1e-6 float32 tolerance. Two runs here gave identical outputs; numba compiles the kernel for the CPU it "
          "runs on, the likeliest cause (not verified).")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--report"]:
        report(sys.argv[2:])
        sys.exit(0)
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(2)
