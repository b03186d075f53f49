"""The reference's expected outputs for a case or a layer spec."""
from . import _core


def as_case(case_or_spec):
    if isinstance(case_or_spec, _core.Case):
        return case_or_spec
    if isinstance(case_or_spec, dict):
        return _core.Case(case_or_spec)
    raise TypeError(f"expected a qoracle.Case or a layer spec dict, got {type(case_or_spec).__name__}")


def reference(case_or_spec, outputs=None, *, convention=None, dtype="float64"):
    """The reference's value of each output, as {name: numpy array}.

    case_or_spec: a qoracle.Case (from qoracle.load) or a layer spec dict (see qoracle.Case).
    outputs: a name or a list ("forward", "forward_disabled", "delta_weight/<adapter>",
        "merged_weight", "forward_merged", "unmerged_weight", "dequantized_weight", ...);
        default: the case's expected outputs, or "forward" for a spec without any.
    convention: "math" or "peft" (where PEFT deviates from the math); default: the case's.
    dtype: "float64" (default) computes the exact math: the oracle. None emulates the case's own
        dtype, rounding where PEFT rounds (what `qoracle check` compares a fixture with).
    """
    names = [outputs] if isinstance(outputs, str) else list(outputs or [])
    return _core.evaluate(as_case(case_or_spec), names, dtype, convention)
