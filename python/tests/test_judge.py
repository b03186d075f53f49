"""qoracle.judge: pass/fail with `qoracle check`'s message, the tolerance table, the fp64 referee."""
import subprocess

import numpy as np
import pytest

import qoracle
from conftest import FIXTURES


def test_a_planted_error_is_counted_located_and_explained():
    expected = np.arange(12.0).reshape(3, 4)
    actual = expected.copy()
    actual[0, 3] += 0.5
    j = qoracle.judge(expected, actual, tolerance=(0.0, 0.01))
    assert not j and j.status == "FAIL"
    assert (j.mismatched, j.total, j.max_abs_index, j.max_abs_error) == (1, 12, 3, 0.5)
    assert j.allowed == pytest.approx(0.01 * 11)
    assert "mismatched elements 1 / 12" in j.message and "at flat index 3" in j.message
    assert "allowed 1.100e-01" in j.message and j.message in repr(j)
    assert qoracle.judge(expected, actual, tolerance={"atol": 0.5})


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-6), ("float16", 1e-3), ("bfloat16", 8e-3)])
def test_the_default_tolerance_is_the_table_for_the_dtype(dtype, rtol):
    # conformance/TOLERANCES.md: rtol of max|expected| by dtype.
    expected = np.array([1.0, -4.0, 2.0])
    assert qoracle.judge(expected, expected + [0, 0, 0.9 * rtol * 4], dtype=dtype)
    assert not qoracle.judge(expected, expected + [0, 0, 1.1 * rtol * 4], dtype=dtype)


def test_the_dtype_defaults_to_the_result_arrays_own():
    expected = np.array([1.0, 2.0])
    actual = np.array([1.0, 2.0009], dtype=np.float16)  # 2.0009 rounds to 2.0 in float16
    assert qoracle.judge(expected, actual).rtol == 1e-3
    assert qoracle.judge(expected, actual.astype(np.float32)).rtol == 1e-6


def test_array_likes_cross_too():
    class OnlyArray:  # what torch CPU tensors and others offer: __array__
        def __array__(self, dtype=None, copy=None):
            return np.array([1.0, 2.0])

    class OnlyDlpack:  # DLPack alone
        def __init__(self, a):
            self.a = a

        def __dlpack__(self, **kw):
            return self.a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

    assert qoracle.judge([1.0, 2.0], OnlyArray())
    assert qoracle.judge(OnlyDlpack(np.array([1.0, 2.0])), np.array([[1.0, 2.0]])[0, ::1])
    strided = np.arange(12.0).reshape(3, 4)[:, ::2]  # non-contiguous
    assert qoracle.judge(strided.copy(), strided)


def test_the_referee_allows_k_times_the_baselines_own_error():
    # bfloat16: k = 2, u = 2^-8. Baseline one step (2^-7) off at 1: bound 2 * 2^-7 + 2^-8 * 2 = 0.0234.
    oracle, baseline = np.array([1.0, -2.0]), np.array([1.0 + 2 ** -7, -2.0])
    ok = qoracle.judge(baseline, np.array([1.0, -2.0 - 0.0234]), oracle=oracle, dtype="bfloat16")
    assert ok and ok.rule == "fp64-referee" and ok.allowed == pytest.approx(2 * 2 ** -7 + 2 ** -8 * 2)
    bad = qoracle.judge(baseline, np.array([1.0, -2.0 - 0.0235]), oracle=oracle, dtype="bfloat16")
    assert not bad and "beyond the fp64-referee bound" in bad.message


def test_a_kernel_result_on_a_float16_case_is_refereed():
    case = qoracle.load(FIXTURES / "peft" / "peft-0.21.2" / "lora_linear_float16.h5")[0]
    peft = case.expected["forward"].astype(np.float16)  # PEFT's own output: within twice its own error
    assert qoracle.judge(case, peft).rule == "fp64-referee"
    assert qoracle.judge(case, peft)
    truth = qoracle.reference(case, "forward")["forward"]
    worse = (truth + 5 * (case.expected["forward"] - truth) + 0.01 * np.abs(truth).max()).astype(np.float16)
    assert not qoracle.judge(case, worse)
    not_half = qoracle.judge(case, truth, dtype="float16")  # float64 values claimed to be float16
    assert not not_half and "not float16" in not_half.message


def test_a_float32_result_on_a_case_meets_the_float32_rule():
    case = qoracle.load(FIXTURES / "peft" / "peft-0.21.2" / "lora_linear_float32.h5")[0]
    truth = qoracle.reference(case, "forward")["forward"]
    assert qoracle.judge(case, truth.astype(np.float32))
    off = truth + 2e-5 * np.abs(truth).max()  # float32_against_oracle: rtol 1e-5
    assert not qoracle.judge(case, off.astype(np.float32))


def test_the_message_is_the_one_qoracle_check_prints(tmp_path, cli):
    case = qoracle.load(FIXTURES / "reference" / "lora_linear.h5")[0]
    spec = case.to_dict()
    spec["expected"]["forward"] = spec["expected"]["forward"] + 1e-6  # a planted regression
    qoracle._core.write_cases(str(tmp_path / "bad.h5"), [qoracle.Case(spec)])
    run = subprocess.run([cli, "check", str(tmp_path / "bad.h5"), "--no-report", "--no-optimized"],
                         capture_output=True, text=True)
    assert run.returncode == 1
    j = qoracle.judge(spec["expected"]["forward"], qoracle.reference(case, "forward")["forward"],
                      tolerance=case.tolerances["forward"])
    assert f"{tmp_path / 'bad.h5'}: {j.message}" in [line.strip() for line in run.stdout.splitlines()]
    (row,) = [r for r in qoracle.check(qoracle.Case(spec)) if r.output == "forward"]
    assert row.message == j.message and not qoracle.check(qoracle.Case(spec))
