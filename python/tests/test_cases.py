"""qoracle.testing.cases: one pytest parameter per fixture case, damaged files included."""
import shutil

import numpy as np
import pytest

import qoracle
import qoracle.testing
from conftest import FIXTURES


def numpy_lora_forward(case):
    """A kernel author's LoRA forward, in numpy: x W^T + b + sum over active adapters of s x_d A^T B^T (+ s lora_B_bias),
    x_d = x * nu with the adapter's recorded dropout noise nu (gradient cases in training mode), else x."""
    y = case.x @ case.base["weight"].T + case.base.get("bias", 0.0)
    for name in case.active_adapters:
        a = case.adapters[name]
        s = a["lora_alpha"] / (np.sqrt(a["r"]) if a["use_rslora"] else a["r"])
        xd = case.x * case.dropout_noise[name] if name in case.dropout_noise else case.x
        y = y + s * ((xd @ a["lora_A"].T) @ a["lora_B"].T + a.get("lora_B_bias", 0.0))
    return y


def plain_lora(case):
    return case.layer_kind == "lora/linear" and not any(a["use_dora"] for a in case.adapters.values())


@pytest.mark.parametrize("case", qoracle.testing.cases([FIXTURES / "reference", FIXTURES / "peft" / "peft-0.21.2"],
                                                        select=plain_lora))
def test_the_helper_drives_a_kernel_test(case):
    # How a kernel author uses it: one test, their kernel judged on every golden case.
    assert qoracle.judge(case, numpy_lora_forward(case), dtype="float64" if case.dtype == "float64" else "float32")


def test_every_case_of_the_tree_is_one_parameter_with_a_unique_id():
    params = qoracle.testing.cases(FIXTURES)
    ids = [p.id for p in params]
    assert len(ids) == len(set(ids)) == len(qoracle.load(FIXTURES))
    assert "peft/peft-0.21.2/lora_linear_float32.h5::" in ids[-1] or any(i.startswith("peft/") for i in ids)


def test_select_filters_cases():
    params = qoracle.testing.cases(FIXTURES / "peft", select=lambda c: c.layer_kind == "oft/hqq")
    assert params and all(p.values[0].layer_kind == "oft/hqq" for p in params)


def test_a_damaged_file_is_one_failing_parameter_naming_it(tmp_path):
    good = FIXTURES / "reference" / "lora_linear.h5"
    data = good.read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.h5").write_text("not a fixture\n")
    shutil.copy(good, tmp_path / "good.h5")
    params = qoracle.testing.cases(tmp_path)
    bad = [p for p in params if isinstance(p.values[0], qoracle.testing.UnreadableCase)]
    assert {p.id.split("::")[0] for p in bad} == {"text.h5", "truncated.h5"}
    assert len(params) - len(bad) == len(qoracle.load(good))
    for p in bad:
        with pytest.raises(qoracle.Error, match=p.id.split("::")[0]):
            p.values[0].x
