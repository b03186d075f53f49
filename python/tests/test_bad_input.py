"""Bad input: every one is a qoracle.Error (a ValueError) whose message names the file or field and
what was expected; nothing crashes the interpreter."""
import numpy as np
import pytest

import qoracle
from conftest import FIXTURES, lora_spec

SPEC_SEED = 7


def spec(**changes):
    s = lora_spec(np.random.default_rng(SPEC_SEED))
    for path, value in changes.items():
        *parents, key = path.split("__")
        target = s
        for p in parents:
            target = target[p]
        if value is None:
            del target[key]
        else:
            target[key] = value
    return s


def run(f):
    with pytest.raises(qoracle.Error) as e:
        f()
    assert isinstance(e.value, ValueError)
    return str(e.value)


BAD = [
    # (what, call, fragments the message must hold)
    ("missing file", lambda tmp: qoracle.load(tmp / "nope.h5"), ["nope.h5"]),
    ("not HDF5", lambda tmp: (tmp.joinpath("t.h5").write_text("x"), qoracle.load(tmp / "t.h5")), ["t.h5"]),
    ("truncated", lambda tmp: (tmp.joinpath("h.h5").write_bytes((FIXTURES / "reference" / "lora_linear.h5").read_bytes()[:5000]),
                               qoracle.load(tmp / "h.h5")), ["h.h5"]),
    ("spec not a dict", lambda tmp: qoracle.Case([1, 2]), ["spec", "expected a dict"]),
    ("unknown key", lambda tmp: qoracle.Case(dict(spec(), layer_knd="x")), ["unknown key 'layer_knd'", "layer_kind"]),
    ("no layer_kind", lambda tmp: qoracle.Case(spec(layer_kind=None)), ["missing key 'layer_kind'"]),
    ("no base", lambda tmp: qoracle.Case(spec(base=None)), ["missing key 'base'"]),
    ("no x", lambda tmp: qoracle.Case(spec(x=None)), ["missing key 'x'"]),
    ("bad dtype", lambda tmp: qoracle.Case(dict(spec(), dtype="float8")), ["float8", "float64"]),
    ("bad convention", lambda tmp: qoracle.Case(dict(spec(), convention="torch")), ["torch", "math"]),
    ("adapter name", lambda tmp: qoracle.Case(dict(spec(), adapters={"a,b": {}})), ["'a,b'", "without ','"]),
    ("int64 x", lambda tmp: qoracle.Case(spec(x=np.arange(12).reshape(2, 6))), ["x", "got int64", "float64, float32"]),
    ("complex x", lambda tmp: qoracle.Case(spec(x=np.ones((2, 6), complex))), ["x", "complex128"]),
    ("bool tensor", lambda tmp: qoracle.Case(spec(base__weight=np.ones((5, 6), bool))), ["base/weight", "got bool"]),
    ("object x", lambda tmp: qoracle.Case(spec(x=object())), ["x", "expected an array", "object"]),
    ("ragged x", lambda tmp: qoracle.Case(spec(x=[[1.0], [1.0, 2.0]])), ["x", "expected an array"]),
    ("string weight", lambda tmp: qoracle.reference(spec(base__weight="w")), ["base/weight: missing dataset"]),
    ("unknown kind", lambda tmp: qoracle.reference(dict(spec(), layer_kind="lora/conv")), ["'lora/conv' is unknown", "lora/linear"]),
    ("unknown output", lambda tmp: qoracle.reference(spec(), ["bogus"]), ["expected/bogus: unknown output", "forward"]),
    ("no lora_B", lambda tmp: qoracle.reference(spec(adapters__default__lora_B=None)), ["adapters/default", "lora_B"]),
    ("shapes", lambda tmp: qoracle.reference(spec(x=np.ones((2, 7)))), ["case 'lora_spec'", "x: expected last dimension 6", "got 7"]),
    ("inactive", lambda tmp: qoracle.reference(dict(spec(), active_adapters=["other"])), ["other"]),
    ("negative tolerance", lambda tmp: qoracle.Case(dict(spec(), expected={"forward": np.ones((2, 3, 5))},
                                                         tolerances={"forward": {"rtol": -1.0}})), ["tolerances/forward/rtol", ">= 0"]),
    ("tolerance of nothing", lambda tmp: qoracle.Case(dict(spec(), tolerances={"forward": {"rtol": 1.0}})), ["tolerances/forward", "no such expected output"]),
    ("logical dtype path", lambda tmp: qoracle.Case(dict(spec(), logical_dtypes={"base/nope": "float16"})), ["logical_dtypes/base/nope"]),
    ("judge tolerance keys", lambda tmp: qoracle.judge([1.0], [1.0], tolerance={"rtool": 1}), ["rtool", "atol, rtol"]),
    ("judge on a missing output", lambda tmp: qoracle.judge(qoracle.load(FIXTURES / "reference" / "lora_linear.h5")[0], [1.0], output="nope"),
     ["lora_linear.h5", "expected/nope", "forward"]),
    ("judge on a wrong shape", lambda tmp: qoracle.judge(qoracle.load(FIXTURES / "reference" / "lora_linear.h5")[0], np.ones(3)),
     ["lora_linear.h5", "expected shape", "got [3]"]),
    ("referee shapes", lambda tmp: qoracle.judge([1.0, 2.0], [1.0, 2.0], oracle=[1.0], dtype="float16"), ["shapes differ"]),
]


@pytest.mark.parametrize("what, call, fragments", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_a_clear_error(tmp_path, what, call, fragments):
    message = run(lambda: call(tmp_path))
    for f in fragments:
        assert f in message, message


def test_a_shape_mismatch_is_a_failed_judgement_not_an_error():
    j = qoracle.judge(np.ones((2, 3)), np.ones((3, 2)))
    assert not j and "shape mismatch: expected [2, 3], got [3, 2]" in j.message


def test_the_peft_part_says_what_it_needs_where_torch_is_missing():
    import importlib.util
    if importlib.util.find_spec("torch") and importlib.util.find_spec("peft"):
        pytest.skip("torch and peft are installed here")
    with pytest.raises(ImportError, match="needs torch and peft"):
        qoracle.check_layer
    with pytest.raises(ImportError, match="needs torch and peft"):
        qoracle.check_model
