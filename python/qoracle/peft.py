"""qoracle.peft: a live PEFT layer checked against the reference, or exported as a fixture case.

Needs torch and PEFT (and hqq, aqlm or eetq for layers on those bases). Supported layers: PEFT's
LoRA (with DoRA, rsLoRA, lora_bias) and OFT wrappers around torch.nn.Linear, hqq's HQQLinear, aqlm's
QuantizedLinear (on the CPU) and eetq's EetqLinear.

    table = qoracle.check_layer(peft_layer, x)    # rows like `qoracle check`; truthy when all pass
    qoracle.export_case(peft_layer, x, "mine.h5") # the same case as a schema-v1 fixture file

The layer's own forward runs on it as given; everything that changes state (disabling adapters,
merge, unmerge) runs on deep copies, so the layer is left as it was.
"""
import contextlib
import copy
import importlib
import importlib.metadata
import json
import math

import peft
import torch

from . import __version__, _core
from ._check import Table

TORCH_DTYPES = {torch.float64: "float64", torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def _cpu(t):
    """A detached CPU copy in the tensor's own dtype (float16/bfloat16 cross into C++ exactly, by
    DLPack). A copy: the forward rewrites some parameters in place (COFT), and later calls too."""
    return t.detach().cpu().clone()


def _dtype_name(dtype, what):
    if dtype not in TORCH_DTYPES:
        raise _core.Error(f"{what}: expected a float64, float32, float16 or bfloat16 tensor, got {dtype}")
    return TORCH_DTYPES[dtype]


# --- the base layer: its kind, tensors and configuration (fixtures/SCHEMA.md, base/) ---------------

def _hqq_config(base):
    params = base.quant_config["weight_quant_params"]
    meta = base.meta
    return dict(nbits=int(meta["nbits"]), group_size=int(meta["group_size"]), axis=int(meta["axis"]),
                round_zero=int(bool(params.get("round_zero", False))), optimize=int(bool(params.get("optimize", True))),
                out_features=int(base.out_features), in_features=int(base.in_features),
                compute_dtype=_dtype_name(base.compute_dtype, "HQQLinear.compute_dtype"),
                # hqq quantizes (and PEFT's merge requantizes) with float32 torch ops on the CPU
                quantizer_arithmetic="float32-cpu", packing=str(meta["packing"]))


def _hqq_state(base, prefix):
    """An HQQLinear's stored state: weight dequantized by hqq, codes unpacked by hqq, scale, zero."""
    from hqq.core.quantize import Quantizer
    meta = base.meta
    n = meta["shape"][0] * meta["shape"][1]
    rows = n // meta["group_size"] if meta["axis"] == 1 else meta["group_size"]
    codes = Quantizer.unpack[meta["packing"]](base.W_q.data, dtype=torch.float32)[:rows]
    return {f"{prefix}_weight": base.dequantize(), f"{prefix}_codes": _cpu(codes).to(torch.int32),
            f"{prefix}_scale": meta["scale"].flatten(), f"{prefix}_zero": meta["zero"].flatten()}


def _aqlm_codes(base):
    """aqlm's codes [out groups, in groups, codebooks] as stored: its first CPU forward with 256-entry
    codebooks permutes them in place to [in groups, out groups, codebooks] (spec aqlm.md)."""
    codes = base.codes.data
    if base.gemv_op is not None and not base.codebooks.is_cuda and base.codebook_size == 256:
        codes = codes.permute(1, 0, 2)
    return _cpu(codes).contiguous()


def _aqlm_base(base):
    if base.codebooks.is_cuda:
        raise _core.Error("check_layer: an aqlm QuantizedLinear on a GPU: which of aqlm's GPU kernels ran is not read "
                          "yet; move the layer and x to the CPU")
    kernel = "numba_gemm_lut" if base.codebook_size == 256 and base.out_group_size == 1 else "dequantize_gemm"
    config = dict(in_group_size=base.in_group_size, out_group_size=base.out_group_size,
                  num_codebooks=base.num_codebooks, nbits_per_codebook=base.nbits_per_codebook,
                  out_features=base.out_features, in_features=base.in_features,
                  dtype=_dtype_name(base.codebooks.dtype, "QuantizedLinear.codebooks"), kernel=kernel)
    return dict(config, codes=_aqlm_codes(base), codebooks=_cpu(base.codebooks), scales=_cpu(base.scales.flatten()))


def _eetq_layout(base):
    import eetq
    if getattr(eetq, "LAYOUT", None):  # qoracle's CPU stand-in says which layout it writes
        return eetq.LAYOUT
    major, minor = torch.cuda.get_device_capability(base.weight.device)  # the real library writes the GPU's own
    return "sm70" if (major, minor) < (7, 5) else "sm75-sm89"


def _base_record(base, dtype):
    """(base kind for layer_kind, base/ dict of the spec)."""
    name = type(base).__name__
    if isinstance(base, torch.nn.Linear):
        record, kind = {"weight": _cpu(base.weight)}, "linear"
    elif name == "HQQLinear":
        record = dict(_hqq_config(base), W_q=_cpu(base.W_q.data), scale=_cpu(base.meta["scale"].flatten()),
                      zero=_cpu(base.meta["zero"].flatten()))
        kind = "hqq"
    elif name == "QuantizedLinear" and hasattr(base, "codebooks"):
        record, kind = _aqlm_base(base), "aqlm"
    elif name == "EetqLinear":
        record = dict(in_features=base.in_features, out_features=base.out_features, layout=_eetq_layout(base),
                      dtype=dtype, kernel="exact" if dtype == "float64" else "fp16_dequantize_fp32_accumulate",
                      weight=_cpu(base.weight), weight_scales=_cpu(base.weight_scales))
        kind = "eetq"
    else:
        raise _core.Error(f"check_layer: base layer {type(base).__module__}.{name}: expected torch.nn.Linear, hqq's "
                          "HQQLinear, aqlm's QuantizedLinear or eetq's EetqLinear")
    if base.bias is not None:
        record["bias"] = _cpu(base.bias)
    return kind, record


# --- the adapters (fixtures/SCHEMA.md, adapters/) ---------------------------------------------------

def _lora_record(layer, name):
    r, alpha, scaling = layer.r[name], float(layer.lora_alpha[name]), float(layer.scaling[name])
    if math.isclose(scaling, alpha / r, rel_tol=1e-12):
        rslora = False
    elif math.isclose(scaling, alpha / math.sqrt(r), rel_tol=1e-12):
        rslora = True
    else:
        raise _core.Error(f"check_layer: adapter '{name}': scaling {scaling} is neither lora_alpha/r ({alpha / r}) nor "
                          f"lora_alpha/sqrt(r) (rsLoRA); a scale set by hand is not a LoraConfig")
    B = layer.lora_B[name]
    record = dict(r=r, lora_alpha=alpha, use_rslora=int(rslora), lora_bias=int(B.bias is not None),
                  use_dora=int(bool(layer.use_dora.get(name, False))),
                  lora_A=_cpu(layer.lora_A[name].weight), lora_B=_cpu(B.weight))
    if B.bias is not None:
        record["lora_B_bias"] = _cpu(B.bias)
    if record["use_dora"]:
        record["magnitude"] = _cpu(layer.lora_magnitude_vector[name].weight)
    return record


def _oft_record(layer, name):
    m = layer.oft_R[name]
    # The block size PEFT resolved (it may have adjusted the configured r or oft_block_size).
    return dict(r=0, oft_block_size=int(layer.oft_block_size[name]), coft=int(bool(m.coft)), eps=float(m.eps),
                block_share=int(bool(m.block_share)), use_cayley_neumann=int(bool(m.use_cayley_neumann)),
                num_cayley_neumann_terms=int(m.num_cayley_neumann_terms), weight=_cpu(m.weight))


def _adapter_token(record):
    """What tells one adapter configuration from another in a case name, as the exporter names them:
    r8_alpha16_dora, b32_neumann5_coft0p01_share, ..."""
    if "oft_block_size" in record:
        token = f"b{record['oft_block_size']}"
        token += f"_neumann{record['num_cayley_neumann_terms']}" if record["use_cayley_neumann"] else "_exact"
        token += f"_coft{record['eps']:g}".replace(".", "p").replace("-", "m") if record["coft"] else ""
        return token + ("_share" if record["block_share"] else "")
    token = f"r{record['r']}_alpha{record['lora_alpha']:g}".replace(".", "p")
    return token + "".join(f"_{flag}" for flag, key in (("rslora", "use_rslora"), ("lorabias", "lora_bias"),
                                                         ("dora", "use_dora")) if record[key])


def _adapter_kind(layer):
    if getattr(layer, "lora_A", None):
        return "lora"
    if getattr(layer, "oft_R", None):
        return "oft"
    raise _core.Error(f"check_layer: {type(layer).__name__}: expected a PEFT LoRA or OFT layer (lora_A or oft_R)")


# --- what PEFT computes -------------------------------------------------------------------------------

def _base_state(base, prefix):
    """Copies: an unmerge changes the base's tensors in place."""
    out = _hqq_state(base, prefix) if type(base).__name__ == "HQQLinear" else {f"{prefix}_weight": base.weight}
    if base.bias is not None:
        out[f"{prefix}_bias"] = base.bias
    return {k: v.detach().clone() for k, v in out.items()}


def _copy(layer):
    """copy.deepcopy, with the non-leaf tensors a module may keep outside its parameters copied
    detached: deepcopy refuses them. hqq's HQQLinear keeps `bias` as a clone of the nn.Linear's,
    with its autograd history (CloneBackward0)."""
    memo = {}

    def seed(value, depth=0):
        if torch.is_tensor(value):
            if value.grad_fn is not None:
                memo[id(value)] = value.detach().clone()
        elif isinstance(value, dict) and depth < 4:
            for v in value.values():
                seed(v, depth + 1)
        elif isinstance(value, (list, tuple)) and depth < 4:
            for v in value:
                seed(v, depth + 1)

    for module in layer.modules():
        seed({k: v for k, v in vars(module).items() if not k.startswith("_")})
    return copy.deepcopy(layer, memo)


@contextlib.contextmanager
def recording_requantizations(out, phase):
    """Each weight PEFT hands hqq's quantizer while the block runs, as requantize_input/<phase>_<k>:
    the stage-wise judging of a merge into HQQ (conformance/TOLERANCES.md) quantizes PEFT's own input."""
    try:
        from hqq.core.quantize import HQQLinear
    except ImportError:  # no hqq, nothing to requantize
        yield
        return
    original = HQQLinear.quantize

    def quantize(self, W, *args, **kwargs):
        step = sum(name.startswith(f"requantize_input/{phase}_") for name in out) + 1
        out[f"requantize_input/{phase}_{step}"] = W.detach().clone()
        return original(self, W, *args, **kwargs)

    HQQLinear.quantize = quantize
    try:
        yield
    finally:
        HQQLinear.quantize = original


def _outputs(layer, adapter, base_kind, x, active):
    out = {}
    with torch.no_grad():
        out["forward"] = layer(x)
        for name in active:
            if adapter == "oft":  # COFT writes its projection back into the parameter (spec Q5)
                out[f"weight_after_forward/{name}"] = _cpu(layer.oft_R[name].weight)  # before get_delta_weight projects again
            if hasattr(layer, "get_delta_weight"):  # PEFT's AqlmLoraLinear has none
                out[f"delta_weight/{name}"] = layer.get_delta_weight(name)
        base = layer.get_base_layer()
        if base_kind == "hqq":
            out["dequantized_weight"] = base.dequantize()
        elif base_kind == "aqlm":
            from aqlm.utils import _dequantize_weight, unpack_int_data
            codes = unpack_int_data(_aqlm_codes(base), base.nbits_per_codebook)
            out["dequantized_weight"] = _dequantize_weight(codes, base.codebooks.data.cpu(), base.scales.data.cpu())
        disabled = _copy(layer)  # enable_adapters also sets requires_grad: never on the user's layer
        disabled.enable_adapters(False)
        out["forward_disabled"] = disabled(x)
        if base_kind in ("linear", "hqq"):  # PEFT refuses to merge into AQLM and EETQ layers
            merged = _copy(layer)
            with recording_requantizations(out, "merge"):
                merged.merge(adapter_names=active)
            out.update(_base_state(merged.get_base_layer(), "merged"))
            out["forward_merged"] = merged(x)
            with recording_requantizations(out, "unmerge"):
                merged.unmerge()
            out.update(_base_state(merged.get_base_layer(), "unmerged"))
    return {k: _cpu(v) for k, v in out.items()}


def _versions(base_kind):
    versions = {"peft": peft.__version__, "torch": torch.__version__, "qoracle": __version__}
    if base_kind != "linear":
        try:
            versions[base_kind] = importlib.metadata.version(base_kind)
        except importlib.metadata.PackageNotFoundError:  # e.g. qoracle's EETQ stand-in, on the path only
            versions[base_kind] = getattr(importlib.import_module(base_kind), "__version__", "unknown")
    return json.dumps(versions, sort_keys=True)


# --- gradients (spec training.md §10): the backward on a deep copy -----------------------------------

_TWO_U = {"bfloat16": 2.0 ** -7, "float16": 2.0 ** -10}


def _gradient_tolerance(base_kind, dtype, output, value_dtype):
    """(atol, rtol) of a gradient output: the rule fixtures/export/export_gradients.py writes
    (conformance/TOLERANCES.md, "Gradients (real-PEFT fixtures)")."""
    if value_dtype == "float64":
        return 0.0, 1e-12
    if dtype == "float32":
        return 0.0, 1e-5
    leaf = output.rsplit("/", 1)[-1]
    if value_dtype == "float32" and leaf in ("lora_A", "lora_B", "lora_B_bias"):  # AQLM/EETQ's T7 is emulated
        return 0.0, 1e-5
    return 0.0, _TWO_U[dtype]


def _dropout_noise_hooks(layer, names):
    """Forward hooks on lora_dropout[a] recording nu with x_d = x * nu (spec §7; as the exporter)."""
    noise, handles = {}, []
    drop = getattr(layer, "lora_dropout", {})
    for n in names:
        if n not in drop or not isinstance(drop[n], torch.nn.Dropout):
            continue

        def hook(module, inputs, output, n=n):
            (x_in,) = inputs
            if not module.training:
                return
            if n in noise:
                raise _core.Error(f"check_layer: lora_dropout[{n}] ran twice in one forward; expected once")
            if (x_in == 0).any():
                raise _core.Error(f"check_layer: lora_dropout[{n}]: its input has exact zeros, where the dropout noise "
                                  "cannot be read back; expected x without zeros (or eval mode, or grads=False)")
            keep = torch.ones(1, dtype=x_in.dtype).div_(1 - module.p)  # what bernoulli_().div_() leaves
            nu = torch.where(output != 0, keep, torch.zeros_like(keep))
            if not torch.equal(x_in * nu, output):
                raise _core.Error(f"check_layer: lora_dropout[{n}]: output is not x * nu with nu in {{0, {keep.item()}}}")
            noise[n] = nu.expand(output.shape)
        handles.append(drop[n].register_forward_hook(hook))
    return noise, handles


def _adapter_parameters(layer, adapter, name):
    """{spec §10 name: parameter} of one adapter."""
    if adapter == "oft":
        return {"weight": layer.oft_R[name].weight}
    params = {"lora_A": layer.lora_A[name].weight, "lora_B": layer.lora_B[name].weight}
    if layer.lora_B[name].bias is not None:
        params["lora_B_bias"] = layer.lora_B[name].bias
    if name in getattr(layer, "lora_magnitude_vector", {}):
        params["magnitude"] = layer.lora_magnitude_vector[name].weight
    return params


def _gradients(layer, adapter, base_kind, x, names, grad_output, seed):
    """What PEFT's backward gives on a deep copy of the layer, in the layer's own mode:
    loss = (y * G).sum(); loss.backward(). G is grad_output, or N(0, 1) from a torch generator
    seeded with `seed` (float64, rounded to y's dtype); dropout draws from torch's generator seeded
    with `seed` inside fork_rng (the caller's generator is left as it was). Returns the spec keys
    training, grad_output, dropout_noise, peft_grad_none, the forward of that run and the gradients."""
    work = _copy(layer)
    xg = x.detach().clone().requires_grad_(True)
    noise, handles = _dropout_noise_hooks(work, names)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            y = work(xg)
    finally:
        for h in handles:
            h.remove()
    if grad_output is None:
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(y.dtype)
    else:
        if not isinstance(grad_output, torch.Tensor) or tuple(grad_output.shape) != tuple(y.shape):
            raise _core.Error(f"check_layer: grad_output: expected a torch.Tensor of the output's shape {tuple(y.shape)}, got "
                              f"{tuple(grad_output.shape) if isinstance(grad_output, torch.Tensor) else type(grad_output).__name__}")
        g = grad_output.detach().to(device=y.device, dtype=y.dtype)
    loss = (y * g).sum()
    if loss.requires_grad:  # not when nothing before the output has a graph (EETQ in eval mode, T13)
        loss.backward()
    expected, none = {"forward": _cpu(y)}, []
    expected["grad_x"] = _cpu(xg.grad) if xg.grad is not None else torch.zeros_like(x)
    if xg.grad is None:
        none.append("grad_x")
    for n in names:
        for p, tensor in _adapter_parameters(work, adapter, n).items():
            key = f"grad/{n}/{p}"
            expected[key] = _cpu(tensor.grad) if tensor.grad is not None else torch.zeros_like(_cpu(tensor))
            if tensor.grad is None:
                none.append(key)
    if adapter == "oft":  # COFT projects in the forward: PEFT's gradient is taken at the projected value
        for n in names:
            expected[f"weight_after_forward/{n}"] = _cpu(work.oft_R[n].weight)
    dtype = TORCH_DTYPES[x.dtype]
    tolerances = {}
    for key, value in expected.items():
        if key.startswith("grad"):
            atol, rtol = _gradient_tolerance(base_kind, dtype, key, TORCH_DTYPES[value.dtype])
            tolerances[key] = dict(atol=atol, rtol=rtol, max_mismatch_fraction=0.0)
    spec = dict(training=bool(work.training), grad_output=_cpu(g), dropout_noise={n: _cpu(v) for n, v in noise.items()},
                peft_grad_none=none)
    return spec, expected, tolerances


def layer_case(layer, x, *, name=None, grads=False, grad_output=None, seed=0):
    """The qoracle.Case of a live PEFT layer on input x: its base and adapter tensors as they are now,
    read before anything runs, and the outputs PEFT computes (forward, forward_disabled,
    delta_weight/<adapter>, weight_after_forward/<adapter> for OFT, dequantized_weight for quantized
    bases, and where PEFT merges -- nn.Linear and HQQ -- merged_*, forward_merged, unmerged_*) as the
    expected outputs, in PEFT's convention, with the tolerances qoracle's exporter gives them.
    grads=True adds the backward (_gradients): grad_output, dropout_noise, training, and the expected
    grad_x and grad/<adapter>/<param> of every active adapter; its forward replaces `forward`
    (with dropout in training mode, the forward whose noise was recorded)."""
    if not isinstance(x, torch.Tensor):
        raise _core.Error(f"check_layer: x: expected a torch.Tensor, got {type(x).__name__}")
    dtype = _dtype_name(x.dtype, "check_layer: x")
    adapter = _adapter_kind(layer)
    base = layer.get_base_layer()
    base_kind, base_record = _base_record(base, dtype)
    active = list(layer.active_adapters)
    names = list(layer.lora_A.keys() if adapter == "lora" else layer.oft_R.keys())
    record = _lora_record if adapter == "lora" else _oft_record
    adapters = {n: record(layer, n) for n in names}  # before the forward: COFT rewrites its parameter
    gradient_spec, tolerances, grad_expected = {}, {}, {}
    if grads:  # first: the deep copy must see the parameters before the forward below (COFT projects in place)
        gradient_spec, grad_expected, tolerances = _gradients(layer, adapter, base_kind, x, active, grad_output, seed)
    expected = _outputs(layer, adapter, base_kind, x, active)
    expected.update(grad_expected)
    kind = f"{adapter}/{base_kind}"
    producer = f"peft-{peft.__version__}"
    if base_kind == "eetq":
        import eetq
        if getattr(eetq, "LAYOUT", None):
            producer += "+eetq-cpu-emulation"  # qoracle's stand-in, not the library
    lead = "x".join(str(d) for d in x.shape[:-1]) or "vec"
    default_name = (f"{kind.replace('/', '_')}_in{x.shape[-1]}_out{expected['forward'].shape[-1]}_x{lead}__"
                    f"{'__'.join(f'{n}_{_adapter_token(adapters[n])}' for n in active) or 'none'}__peft_{dtype}")
    return _core.Case(dict(
        name=name or default_name, layer_kind=kind, dtype=dtype, convention="peft", producer=producer,
        producer_versions=_versions(base_kind), active_adapters=active, merge_adapters=active,
        description="a live PEFT layer, read by qoracle.peft", base=base_record, adapters=adapters, x=_cpu(x),
        expected=expected, **({"tolerances": tolerances} if tolerances else {}), **gradient_spec))


def check_layer(layer, x, *, name=None, grads=False, grad_output=None, seed=0):
    """The live PEFT layer checked against the reference: layer_case's expected outputs recomputed
    and judged as `qoracle check` judges a fixture (its stored tolerances, and the fp64 referee for
    low-precision outputs). Returns a qoracle.Table; `assert qoracle.check_layer(layer, x)`.
    grads=True also judges grad_x and every active adapter's gradient (layer_case; G = grad_output
    or seeded by `seed`), from a backward on a deep copy: the layer's own .grad stay untouched."""
    case = layer_case(layer, x, name=name, grads=grads, grad_output=grad_output, seed=seed)
    table = Table(_core.check(case))
    table.case = case
    return table


def export_case(layer, x, path, *, name=None, grads=False, grad_output=None, seed=0):
    """Write layer_case(layer, x) as a schema-v1 fixture file (replacing `path`), for `qoracle check`
    or a bug report (grads=True: with the gradients, as check_layer). Returns the case."""
    case = layer_case(layer, x, name=name, grads=grads, grad_output=grad_output, seed=seed)
    _core.write_cases(str(path), [case])
    return case


# The whole-model check (qoracle/model.py) builds on the functions above.
from .model import ModelReport, check_model, export_model  # noqa: E402,F401
