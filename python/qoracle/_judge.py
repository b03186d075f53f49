"""Judging a result: the one comparison rule of `qoracle check` (conformance/TOLERANCES.md)."""
from . import _core

DTYPES = ("float64", "float32", "float16", "bfloat16")


def dtype_of(array):
    """The float dtype name of a numpy array or torch tensor, else None."""
    name = str(getattr(array, "dtype", "")).replace("torch.", "")
    return name if name in DTYPES else None


def tolerance_tuple(tolerance):
    if isinstance(tolerance, dict):
        unknown = set(tolerance) - {"atol", "rtol", "max_mismatch_fraction"}
        if unknown:
            raise _core.Error(f"tolerance: unknown keys {sorted(unknown)}; expected atol, rtol, max_mismatch_fraction")
        return tolerance.get("atol", 0.0), tolerance.get("rtol", 0.0), tolerance.get("max_mismatch_fraction", 0.0)
    values = tuple(tolerance)
    if len(values) not in (2, 3):
        raise _core.Error(f"tolerance: expected (atol, rtol) or (atol, rtol, max_mismatch_fraction), got {tolerance!r}")
    return values + (0.0,) * (3 - len(values))


def judge(expected, actual, *, dtype=None, output="forward", convention="math", tolerance=None, oracle=None,
          equal_nan=False):
    """Judge `actual` and return a qoracle.Judgement: truthy when it passes, with the message
    `qoracle check` prints (mismatch count and share, largest absolute and relative difference
    and its flat index, the allowed bound), so `assert qoracle.judge(...)` explains a failure.

    Three forms:
    - judge(case, actual, output="forward"): a result computed your own way for an output of a
      fixture case (a kernel), judged as qoracle judges its own fused kernels: computed in
      float16/bfloat16, by the fp64 referee (at most twice as far from the float64 truth as the
      fixture's producer, e.g. PEFT, in that dtype; and every value of the dtype); float32,
      within 1e-5 of max|truth|; float64, within tolerance_for(float64).
    - judge(expected, actual, dtype=..., output=...): max|actual - expected| <= atol + rtol *
      max|expected|, with `tolerance` ({"atol", "rtol", "max_mismatch_fraction"} or a tuple) or
      else the tolerance the project gives `output` in `dtype` and `convention`.
    - judge(expected, actual, oracle=truth64, dtype=...): the fp64-referee rule, `expected`
      being the baseline (say PEFT's own result in that dtype): |actual - truth| <= k *
      |expected - truth| + u(dtype) * max|truth|, k = 2 below float64.

    equal_nan: with expected/actual arrays, NaN in `actual` fails even where `expected` is NaN too,
    unless True (as torch.testing.assert_close); the message counts the NaNs and names the first.

    dtype: the dtype `actual` was computed in; default its own dtype (numpy or torch), else
    the case's, else float64. Arrays may be numpy arrays, CPU torch tensors or anything
    numpy.asarray takes.
    """
    d = dtype or dtype_of(actual)
    if isinstance(expected, _core.Case):
        return _core.judge_on_case(expected, output, actual, d or expected.dtype)
    d = d or "float64"
    if oracle is not None:
        return _core.referee(oracle, expected, actual, d, output)
    atol, rtol, frac = tolerance_tuple(tolerance) if tolerance is not None else _core.tolerance_for(d, output, convention)
    return _core.compare(expected, actual, atol, rtol, frac, output, equal_nan)
