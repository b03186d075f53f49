"""qoracle.reference: the C++ reference's outputs for a case or a layer spec, against formulas
written here in numpy from the specs (shared/spec/peft-oft-lora.md), and against every fixture."""
import numpy as np
import pytest

import qoracle
from conftest import FIXTURES, lora_spec


@pytest.mark.parametrize("rslora", [False, True])
def test_lora_forward_is_the_formula(rng, rslora):
    spec = lora_spec(rng, r=4, alpha=6.0, use_rslora=rslora)
    W, b, x = spec["base"]["weight"], spec["base"]["bias"], spec["x"]
    A, B = spec["adapters"]["default"]["lora_A"], spec["adapters"]["default"]["lora_B"]
    s = 6.0 / (np.sqrt(4) if rslora else 4)
    y = qoracle.reference(spec, "forward")["forward"]
    np.testing.assert_allclose(y, x @ W.T + b + s * (x @ A.T) @ B.T, rtol=0, atol=1e-13)


def test_dora_forward_is_the_formula(rng):
    # y = g * (x W^T + s x A^T B^T) + b, g = m / ||W + s B A|| per output row (spec §4.3).
    spec = lora_spec(rng, r=2, alpha=2.0, use_dora=True)
    spec["adapters"]["default"]["magnitude"] = rng.uniform(0.5, 1.5, 5)
    W, b, x = spec["base"]["weight"], spec["base"]["bias"], spec["x"]
    a = spec["adapters"]["default"]
    s = 2.0 / 2
    g = a["magnitude"] / np.linalg.norm(W + s * a["lora_B"] @ a["lora_A"], axis=1)
    y = qoracle.reference(spec, "forward")["forward"]
    np.testing.assert_allclose(y, g * (x @ W.T + s * (x @ a["lora_A"].T) @ a["lora_B"].T) + b, rtol=0, atol=1e-13)


def test_oft_exact_cayley_forward_is_the_formula(rng):
    # PEFT's exact path: S from the strict upper triangle (row-major), R = (I - S)(I + S)^-1 per block,
    # y = (x R_bd) W^T + b (spec §1.2, §1.3, §2).
    inp, out, b = 8, 3, 4
    v = rng.normal(0, 0.2, (inp // b, b * (b - 1) // 2))
    spec = {"layer_kind": "oft/linear", "convention": "peft",
            "base": {"weight": rng.normal(size=(out, inp)), "bias": rng.normal(size=out)},
            "adapters": {"default": dict(r=0, oft_block_size=b, coft=False, eps=6e-5, block_share=False,
                                         use_cayley_neumann=False, num_cayley_neumann_terms=5, weight=v)},
            "x": rng.normal(size=(5, inp))}
    rows, cols = np.triu_indices(b, 1)
    R = np.zeros((inp, inp))
    for k in range(inp // b):
        S = np.zeros((b, b))
        S[rows, cols] = v[k]
        S = S - S.T
        R[k * b:(k + 1) * b, k * b:(k + 1) * b] = (np.eye(b) - S) @ np.linalg.inv(np.eye(b) + S)
    y = qoracle.reference(spec, ["forward"])["forward"]
    want = (spec["x"] @ R) @ spec["base"]["weight"].T + spec["base"]["bias"]
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-13)


def test_the_convention_switch_shows_a_peft_deviation():
    # Cayley-Neumann: PEFT's series approximates the transpose of the exact rotation (spec Q1), so
    # a PEFT-convention Neumann case computed in the math convention differs.
    (case,) = [c for c in qoracle.load(FIXTURES / "peft" / "peft-0.21.2" / "oft_linear_float64.h5")
               if "neumann" in c.name and "coft" not in c.name][:1]
    peft = qoracle.reference(case, "forward")["forward"]
    math = qoracle.reference(case, "forward", convention="math")["forward"]
    assert qoracle.judge(case.expected["forward"], peft, tolerance=case.tolerances["forward"])
    assert not qoracle.judge(case.expected["forward"], math, tolerance=case.tolerances["forward"])


def test_emulating_a_float16_case_gives_float16_values():
    case = qoracle.load(FIXTURES / "peft" / "peft-0.21.2" / "lora_linear_float16.h5")[0]
    y = qoracle.reference(case, "forward", dtype=None)["forward"]
    np.testing.assert_array_equal(y.astype(np.float16).astype(np.float64), y)
    assert not np.array_equal(y, qoracle.reference(case, "forward")["forward"])  # the float64 oracle differs


FILES = qoracle.fixture_files([FIXTURES / "reference", FIXTURES / "peft" / "peft-0.21.2"])


@pytest.mark.parametrize("path", FILES, ids=[p.split("fixtures/")[-1] for p in FILES])
def test_every_expected_output_is_reproduced_within_its_tolerance(path):
    # What `qoracle check` does for the reference's rows, through the Python API.
    for case in qoracle.load(path):
        got = qoracle.reference(case, dtype=None)
        derived = case.derived_bounds  # what `qoracle check` adds where PEFT's error grows with the problem
        for name, want in case.expected.items():
            atol, rtol, frac = qoracle._judge.tolerance_tuple(case.tolerances[name])
            j = qoracle.judge(want, got[name], output=name, tolerance=(atol + derived.get(name, 0.0), rtol, frac))
            assert j, f"{case.where}: {j.message}"
