"""qoracle.load: fixture files read by the C++ reader into Case objects (config, tensors)."""
import numpy as np
import pytest

import qoracle
from conftest import FIXTURES, lora_spec


def test_a_reference_file_reads_as_self_consistent_cases():
    cases = qoracle.load(FIXTURES / "reference" / "lora_linear.h5")
    assert len(cases) > 5
    for c in cases:
        assert (c.layer_kind, c.dtype, c.producer) == ("lora/linear", "float64", "qoracle-reference")
        assert c.name.endswith(f"_seed{c.seed}")
        out, inp = c.base["weight"].shape
        assert c.x.shape[-1] == inp
        assert c.expected["forward"].shape == c.x.shape[:-1] + (out,)
        for name in c.active_adapters:
            a = c.adapters[name]
            assert a["lora_A"].shape == (a["r"], inp) and a["lora_B"].shape == (out, a["r"])
        assert set(c.tolerances) == set(c.outputs) == set(c.expected)


def test_integer_codes_keep_their_stored_types_and_half_floats_their_logical_dtype():
    # SCHEMA.md: W_q uint8 (int32 for 3-bit), AQLM codes int8/int16, EETQ weight int8 + float16 scales.
    hqq = qoracle.load(FIXTURES / "peft" / "peft-0.21.2" / "lora_hqq_float32.h5")
    for c in hqq:
        assert c.base["W_q"].dtype == (np.int32 if c.base["nbits"] == 3 else np.uint8), c.name
    aqlm = qoracle.load(FIXTURES / "peft" / "peft-0.21.2" / "lora_aqlm_float32.h5")
    assert {c.base["codes"].dtype for c in aqlm} <= {np.dtype(np.int8), np.dtype(np.int16)}
    eetq = qoracle.load(FIXTURES / "peft" / "peft-0.21.2" / "lora_eetq_float16.h5")
    for c in eetq:
        assert c.base["weight"].dtype == np.int8
        assert c.logical_dtypes["base/weight_scales"] == "float16"
        assert c.logical_dtypes["x"] == "float16"


def test_a_folder_loads_every_file_under_it():
    folder = FIXTURES / "peft" / "peft-0.21.2"
    files = qoracle.fixture_files(folder)
    assert files == sorted(files) and all(f.endswith(".h5") for f in files)
    assert len(qoracle.load(folder)) == sum(len(qoracle.load(f)) for f in files)


def test_write_then_load_keeps_values_dtypes_and_configuration(tmp_path, rng):
    spec = lora_spec(rng)
    spec["dtype"] = "float16"
    spec["x"] = spec["x"].astype(np.float16)
    spec["base"]["weight"] = spec["base"]["weight"].astype(np.float16)
    spec["base"]["codes"] = rng.integers(-128, 127, (5, 6)).astype(np.int8)
    spec["expected"] = {"forward": rng.normal(size=(2, 3, 5)).astype(np.float16)}
    spec["tolerances"] = {"forward": {"atol": 0.0, "rtol": 0.25}}
    spec["logical_dtypes"] = {"base/bias": "bfloat16"}
    spec["base"]["bias"] = np.array([1.0, -2.0, 0.5, 3.0, 0.25])  # bfloat16 values
    qoracle._core.write_cases(str(tmp_path / "one.h5"), [qoracle.Case(spec)])
    (c,) = qoracle.load(tmp_path / "one.h5")
    assert (c.name, c.layer_kind, c.dtype) == ("lora_spec", "lora/linear", "float16")
    np.testing.assert_array_equal(c.x, spec["x"].astype(np.float64))
    np.testing.assert_array_equal(c.base["codes"], spec["base"]["codes"])
    assert c.base["codes"].dtype == np.int8
    assert c.logical_dtypes["base/weight"] == "float16" and c.logical_dtypes["base/bias"] == "bfloat16"
    assert c.adapters["default"]["r"] == 2 and c.adapters["default"]["lora_alpha"] == 4.0
    assert c.tolerances["forward"] == {"atol": 0.0, "rtol": 0.25, "max_mismatch_fraction": 0.0}
    again = qoracle.Case(c.to_dict())
    for k, v in c.to_dict()["base"].items():
        np.testing.assert_array_equal(again.base[k], v)


def test_cli_inspect_counts_the_same_cases(cli):
    import subprocess
    path = FIXTURES / "reference" / "oft_linear.h5"
    out = subprocess.run([cli, "inspect", str(path)], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == f"{path}: {len(qoracle.load(path))} case(s)"
