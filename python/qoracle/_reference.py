"""The reference's expected outputs for a case or a layer spec."""
from . import _core


def as_case(case_or_spec):
    if isinstance(case_or_spec, _core.Case):
        return case_or_spec
    if isinstance(case_or_spec, dict):
        return _core.Case(case_or_spec)
    raise TypeError(f"expected a qoracle.Case or a layer spec dict, got {type(case_or_spec).__name__}")


def with_gradient_inputs(case, grad_output=None, dropout_noise=None, training=None):
    """The case with its upstream gradient G, dropout noise or module mode replaced (None: the case's)."""
    if grad_output is None and dropout_noise is None and training is None:
        return case
    spec = case.to_dict()
    if grad_output is not None:
        spec["grad_output"] = grad_output
        spec["logical_dtypes"].pop("grad_output", None)  # the new array's own dtype
    if dropout_noise is not None:
        spec["dropout_noise"] = dict(dropout_noise)
        for name in list(spec["logical_dtypes"]):
            if name.startswith("dropout_noise/"):
                del spec["logical_dtypes"][name]
    if training is not None:
        spec["training"] = bool(training)
    return _core.Case(spec)


def reference(case_or_spec, outputs=None, *, convention=None, dtype="float64", grad_output=None, dropout_noise=None,
              training=None):
    """The reference's value of each output, as {name: numpy array}.

    case_or_spec: a qoracle.Case (from qoracle.load) or a layer spec dict (see qoracle.Case).
    outputs: a name or a list ("forward", "forward_disabled", "delta_weight/<adapter>",
        "merged_weight", "forward_merged", "unmerged_weight", "dequantized_weight", ...);
        default: the case's expected outputs, or "forward" for a spec without any.
    convention: "math" or "peft" (where PEFT deviates from the math); default: the case's.
    dtype: "float64" (default) computes the exact math: the oracle. None emulates the case's own
        dtype, rounding where PEFT rounds (what `qoracle check` compares a fixture with).
    Gradients: outputs "grad_x" and "grad/<adapter>/<param>" (lora_A, lora_B, lora_B_bias,
        magnitude, weight) of L = sum(G * y). G is the case's grad_output unless grad_output is
        given ([..., out_features]); dropout_noise {adapter: nu} and training likewise.
    """
    names = [outputs] if isinstance(outputs, str) else list(outputs or [])
    case = with_gradient_inputs(as_case(case_or_spec), grad_output, dropout_noise, training)
    return _core.evaluate(case, names, dtype, convention)
