"""qoracle.peft.check_model / export_model: every PEFT adapter layer of a model, checked on the input
it really sees.

One forward of the model on the user's inputs, with a forward hook on each PEFT tuner layer, captures
each layer's input (the first max_tokens rows of its flattened leading dimensions: deterministic and
bounded); the hooks are then removed and each layer goes through check_layer's two steps (layer_case,
then the reference and judging, timed apart) or export_case's on its own input. The model's forward
runs once, as given (its mode: eval() for dropout-free forwards).

    report = qoracle.peft.check_model(model, {"input_ids": ids})
    print(report.summary()); assert report
    qoracle.peft.export_model(model, {"input_ids": ids}, "my_model_cases")  # qoracle check my_model_cases
"""
import math
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import torch
from peft.tuners.tuners_utils import BaseTunerLayer

from . import _core
from ._check import Table
from .peft import layer_case


def tuner_layers(model):
    """(module name, layer) of every PEFT tuner layer of the model, in module order. Layers
    check_layer does not read (other tuners, other bases) are kept: they become refused rows."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]


def _run(model, inputs):
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, torch.Tensor):
        return model(inputs)
    raise _core.Error(f"check_model: inputs: expected a dict of keyword arguments or a torch.Tensor, got {type(inputs).__name__}")


def capture_inputs(model, inputs, *, max_tokens=64):
    """({module name: captured x [tokens, in_features]}, [(name, layer)], seconds of the hooked
    forward). A layer called more than once in the forward keeps its first input; one never called
    maps to None."""
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise _core.Error(f"check_model: max_tokens: expected a positive int, got {max_tokens!r}")
    layers = tuner_layers(model)
    captured = {name: None for name, _ in layers}
    handles = []

    def hook_for(name):
        def hook(module, args, kwargs, output):
            if captured[name] is not None:
                return
            x = args[0] if args else kwargs.get("x", kwargs.get("input"))
            if isinstance(x, torch.Tensor) and x.dim() >= 1:
                # A copy: the model may reuse the activation buffer in place later in the forward.
                captured[name] = x.detach().reshape(-1, x.shape[-1])[:max_tokens].clone()
        return hook

    try:
        for name, layer in layers:
            handles.append(layer.register_forward_hook(hook_for(name), with_kwargs=True))
        start = time.perf_counter()
        with torch.no_grad():
            _run(model, inputs)
        seconds = time.perf_counter() - start
    finally:
        for h in handles:
            h.remove()
    return captured, layers, seconds


_BASES = ("Linear", "HQQLinear", "QuantizedLinear", "EetqLinear")


def _refusal(layer):
    """Why qoracle.peft cannot read this tuner layer, or None: it reads LoRA (DoRA) and OFT layers on the
    four base kinds only. Said here, before layer_case, so the message names the layer's type."""
    adapter = "lora" if getattr(layer, "lora_A", None) else "oft" if getattr(layer, "oft_R", None) else None
    base = layer.get_base_layer() if hasattr(layer, "get_base_layer") else None
    if adapter is None or type(base).__name__ not in _BASES:
        return (f"{type(layer).__module__}.{type(layer).__name__} on {type(base).__module__}.{type(base).__name__}: "
                "qoracle.peft reads LoRA/DoRA/OFT layers on torch.nn.Linear, hqq's HQQLinear, aqlm's QuantizedLinear "
                "and eetq's EetqLinear")
    return None


def _layer_kind(layer):
    if _refusal(layer):
        return type(layer).__name__
    adapter = "lora" if getattr(layer, "lora_A", None) else "oft"
    base = type(layer.get_base_layer()).__name__
    base = {"Linear": "linear", "HQQLinear": "hqq", "QuantizedLinear": "aqlm", "EetqLinear": "eetq"}.get(base, base)
    if adapter == "lora" and any(layer.use_dora.get(n, False) for n in layer.active_adapters):
        adapter = "dora"
    return f"{adapter}/{base}"


def _row_ratio(row):
    """(error, allowed, error/allowed) of one judged output; an error row is infinitely bad."""
    if row.error:
        return math.nan, row.allowed, math.inf
    error = row.error_vs_oracle if row.rule == "fp64-referee" else row.max_abs_error
    allowed = row.allowed
    if allowed is None or error is None:
        return error, allowed, math.inf
    if allowed == 0:
        return error, allowed, 0.0 if error == 0 else math.inf
    return error, allowed, error / allowed


class LayerResult:
    """One PEFT layer's check: module name, kind ('lora/hqq', 'dora/linear', ...), dtype, tokens,
    verdict (PASS, FAIL or ERROR), the worst output with its error, allowed bound and their ratio,
    seconds (peft_seconds of them reading the layer and running PEFT's side), and the qoracle.Table (None when qoracle refused the layer: `error` says why)."""

    def __init__(self, name, kind, dtype, tokens, table=None, error=None, seconds=0.0):
        self.name, self.kind, self.dtype, self.tokens, self.table, self.error, self.seconds = (
            name, kind, dtype, tokens, table, error, seconds)
        self.peft_seconds = 0.0  # of seconds: layer_case (PEFT's forward, disabled forward, merge/unmerge on copies)
        self.worst, self.worst_error, self.allowed, self.ratio = None, None, None, math.inf
        if table is not None and len(table):
            worst = max(table, key=lambda row: _row_ratio(row)[2])
            self.worst = worst.output
            self.worst_error, self.allowed, self.ratio = _row_ratio(worst)
        if error is not None:
            self.verdict = "ERROR"
        elif table is None or len(table) == 0 or any(row.status == "ERROR" for row in table):
            self.verdict = "ERROR"
            self.error = self.error or ("no outputs to judge" if table is not None and not len(table) else None)
        else:
            self.verdict = "PASS" if table else "FAIL"

    @property
    def passed(self):
        return self.verdict == "PASS"

    def __bool__(self):
        return self.passed

    def __repr__(self):
        return f"<LayerResult {self.name} {self.kind} {self.dtype} {self.verdict} worst={self.worst} ratio={self.ratio:.3g}>"


class ModelReport(list):
    """LayerResult rows in module order; truthy when every layer passed. summary() fits one screen:
    the counts, the worst layers first with their largest error against the allowed bound, and the
    time (the hooked forward and the checks)."""

    def __init__(self, rows, forward_seconds, workers=1, wall_seconds=None):
        super().__init__(rows)
        self.forward_seconds = forward_seconds
        self.workers = workers  # layers checked at once
        # the checks' wall time (PEFT's side and the reference, overlapped when workers > 1)
        self.wall_seconds = self.check_seconds if wall_seconds is None else wall_seconds

    def __bool__(self):
        return len(self) > 0 and all(row.passed for row in self)

    @property
    def failures(self):
        return [row for row in self if not row.passed]

    @property
    def check_seconds(self):
        return sum(row.seconds for row in self)

    def summary(self, worst=10):
        counts = {v: sum(row.verdict == v for row in self) for v in ("PASS", "FAIL", "ERROR")}
        lines = [f"qoracle check_model: {len(self)} PEFT layers: {counts['PASS']} passed, {counts['FAIL']} failed, "
                 f"{counts['ERROR']} refused or errors"]
        ranked = sorted(self, key=lambda row: (row.passed, -row.ratio))
        width = max([len(row.name) for row in ranked[:worst]] + [6])
        lines.append(f"{'layer':{width}}  {'kind':12} {'dtype':8} {'tokens':>6}  verdict  {'worst output':34} "
                     f"{'error':>9} {'allowed':>9} {'ratio':>7} {'s':>6}")
        for row in ranked[:worst]:
            if row.worst is None:
                lines.append(f"{row.name:{width}}  {row.kind:12} {row.dtype:8} {row.tokens:>6}  {row.verdict:7}  {row.error}")
                continue
            number = lambda v: f"{v:9.2e}" if v is not None and not math.isnan(v) else f"{'-':>9}"
            lines.append(f"{row.name:{width}}  {row.kind:12} {row.dtype:8} {row.tokens:>6}  {row.verdict:7}  "
                         f"{row.worst:34} {number(row.worst_error)} {number(row.allowed)} {row.ratio:7.3f} {row.seconds:6.2f}")
            if row.verdict == "ERROR" and row.error:
                lines.append(f"{'':{width}}  {row.error}")
        if len(ranked) > worst:
            lines.append(f"... {len(ranked) - worst} more layers, all with a smaller error/allowed ratio")
        peft = sum(row.peft_seconds for row in self)
        lines.append(f"time: the model's hooked forward {self.forward_seconds:.2f} s, checks {self.wall_seconds:.2f} s wall "
                     f"({self.workers} at once); the layers' own times add up to {self.check_seconds:.2f} s "
                     f"({self.check_seconds / max(len(self), 1):.2f} s a layer): PEFT's side {peft:.2f} s, "
                     f"the reference and judging {self.check_seconds - peft:.2f} s")
        return "\n".join(lines)

    __str__ = summary


def _progress(total, enabled):
    """update(text) per layer on stderr: tqdm where it is installed, else one rewritten line."""
    if not enabled:
        return lambda text: None, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bar = tqdm(total=total, file=sys.stderr, unit="layer", desc="qoracle")

        def update(text):
            bar.set_postfix_str(text, refresh=False)
            bar.update(1)
        return update, bar.close
    done = [0]

    def update(text):
        done[0] += 1
        sys.stderr.write(f"\rqoracle: {done[0]}/{total} layers  {text[:60]:60}")
        sys.stderr.flush()
    return update, lambda: sys.stderr.write("\n")


def _dtype(x):
    return str(x.dtype).replace("torch.", "") if x is not None else "-"


def _workers(workers):
    """How many layers check_model checks at once: `workers`, else QORACLE_CHECK_THREADS (as for
    `qoracle check`), else every core."""
    source = "workers"
    if workers is None:
        env = os.environ.get("QORACLE_CHECK_THREADS")
        if env is None:
            return max(1, os.cpu_count() or 1)
        source, workers = "QORACLE_CHECK_THREADS", env.strip()
        if workers.isdigit():
            workers = int(workers)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
        raise _core.Error(f"check_model: {source}: expected a thread count from 1 to 1024, got {workers!r}")
    return workers


def _judge(case):
    """The reference and judging of one layer's case, timed: runs on a worker thread (the C++ check
    releases the GIL)."""
    start = time.perf_counter()
    table = Table(_core.check(case))
    table.case = case
    return table, time.perf_counter() - start


def check_model(model, inputs, *, grads=False, max_tokens=64, progress=True, workers=None):
    """Every PEFT tuner layer of `model` checked against the reference on the input it sees in one
    forward of `model` on `inputs` (a dict of keyword arguments, or a tensor): check_layer on the first
    max_tokens rows of each layer's input (grads=True: with its backward, G seeded; see check_layer).
    PEFT's side of each layer (layer_case) runs on the calling thread, one layer after the other; the
    reference and judging of up to `workers` layers run at once on threads (default: every core, or
    QORACLE_CHECK_THREADS; 1: one after the other), each reference on one thread, as `qoracle check`
    runs cases. The rows are the same whatever `workers` is, in module order.
    Returns a ModelReport (truthy when every layer passes); a layer qoracle refuses is a row with its
    qoracle.Error, never an exception."""
    workers = _workers(workers)
    captured, layers, forward_seconds = capture_inputs(model, inputs, max_tokens=max_tokens)
    update, close = _progress(len(layers), progress)
    rows = [None] * len(layers)
    pending = {}  # future -> (index, LayerResult fields, seconds of PEFT's side)
    started = time.perf_counter()

    def finish(future):
        i, fields, peft_seconds = pending.pop(future)
        try:
            table, seconds = future.result()
            row = LayerResult(*fields, table=table)
        except _core.Error as e:
            row, seconds = LayerResult(*fields, error=str(e)), 0.0
        row.peft_seconds, row.seconds = peft_seconds, peft_seconds + seconds
        rows[i] = row
        update(f"{row.name} {row.verdict}")

    pool, threads_before = None, _core.reference_threads()
    if workers > 1:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qoracle-check")
        _core.set_reference_threads(1)  # a core per layer, not every core per layer
    try:
        for i, (name, layer) in enumerate(layers):
            x = captured[name]
            kind, tokens = _layer_kind(layer), 0 if x is None else x.shape[0]
            start = time.perf_counter()
            if _refusal(layer) or x is None:
                error = _refusal(layer) or "not called in the model's forward on these inputs"
                rows[i] = LayerResult(name, kind, _dtype(x) if _refusal(layer) else "-", tokens, error=error)
                update(f"{name} ERROR")
                continue
            fields = (name, kind, _dtype(x), tokens)
            try:  # PEFT's side: what PEFT computes, read on this thread (torch and the layer stay here)
                case = layer_case(layer, x, name=name, grads=grads)
            except _core.Error as e:
                rows[i] = LayerResult(*fields, error=str(e))
                rows[i].seconds = time.perf_counter() - start
                update(f"{name} ERROR")
                continue
            peft_seconds = time.perf_counter() - start
            if pool is None:
                future = _Done(_judge, case)
                pending[future] = (i, fields, peft_seconds)
                finish(future)
                continue
            pending[pool.submit(_judge, case)] = (i, fields, peft_seconds)
            while len(pending) >= 2 * workers:  # bounded: at most 2 cases a worker held in memory
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: pending[f][0]):
                    finish(future)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f][0]):
                finish(future)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            _core.set_reference_threads(threads_before)
        close()
    return ModelReport(rows, forward_seconds, workers, time.perf_counter() - started)


class _Done:
    """A finished call in the shape of a future, for workers=1 (no threads at all)."""

    def __init__(self, function, *args):
        try:
            self._value, self._error = function(*args), None
        except _core.Error as e:
            self._value, self._error = None, e

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value


def case_file_name(module_name):
    """model.layers.0.self_attn.q_proj -> model_layers_0_self_attn_q_proj.h5"""
    return module_name.replace(".", "_").replace("/", "_") + ".h5"


def export_model(model, inputs, folder, *, max_tokens=64, grads=False):
    """The same capture as check_model, then one sealed fixture file per PEFT layer in `folder`
    (created if missing): folder/<module name, dots as underscores>.h5, one case named
    '<module name>__<the case's parameter name>', so `qoracle check folder` reruns the model's
    layers without torch. Returns {module name: file path, or the qoracle.Error message of a layer
    qoracle refused (no file)}."""
    captured, layers, _ = capture_inputs(model, inputs, max_tokens=max_tokens)
    os.makedirs(folder, exist_ok=True)
    written = {}
    for name, layer in layers:
        x = captured[name]
        if _refusal(layer) or x is None:
            written[name] = _refusal(layer) or "not called in the model's forward on these inputs"
            continue
        try:
            case = layer_case(layer, x, grads=grads)
            spec = case.to_dict()
            spec["name"] = f"{name}__{case.name}"
            path = os.path.join(folder, case_file_name(name))
            _core.write_cases(path, [_core.Case(spec)])
            written[name] = path
        except _core.Error as e:
            written[name] = str(e)
    return written
