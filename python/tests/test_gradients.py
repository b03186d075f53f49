"""Gradients in the Python package (spec training.md, issue 30 item 5): the spec keys of a gradient
case round-trip, bad ones are refused with a message naming the field, and qoracle.reference's
gradients equal closed forms written here in numpy from the spec (§2, §7), with G from the case
or passed in. The live-PEFT part (check_layer(..., grads=True)) runs in python/tests/peft_layers.py."""
import numpy as np
import pytest

import qoracle
from conftest import FIXTURES, lora_spec


def gradient_spec(rng, dropout=False):
    spec = lora_spec(rng, r=3, alpha=5.0)  # s = 5/3: no power of two
    spec["grad_output"] = rng.normal(size=(*spec["x"].shape[:-1], 5))
    spec["training"] = True
    if dropout:
        spec["dropout_noise"] = {"default": np.where(rng.uniform(size=spec["x"].shape) < 0.25, 0.0, 1 / 0.75)}
    return spec


def lora_gradients(spec):
    """∂x, ∂A, ∂B of L = Σ G ⊙ y, y = x Wᵀ + b + s (x⊙ν) Aᵀ Bᵀ (spec §2, §7)."""
    W, x, G = spec["base"]["weight"], spec["x"], spec["grad_output"]
    a = spec["adapters"]["default"]
    A, B, s = a["lora_A"], a["lora_B"], a["lora_alpha"] / a["r"]
    nu = spec.get("dropout_noise", {}).get("default", np.ones_like(x))
    xd = (x * nu).reshape(-1, x.shape[-1])
    G2 = G.reshape(-1, G.shape[-1])
    gx = (G2 @ W + s * ((G2 @ B) @ A) * nu.reshape(-1, x.shape[-1])).reshape(x.shape)
    return gx, s * B.T @ G2.T @ xd, s * G2.T @ (xd @ A.T)


def test_gradient_keys_round_trip(rng):
    spec = gradient_spec(rng, dropout=True)
    spec["expected"] = {"grad/default/lora_A": np.zeros((3, 6))}
    spec["peft_grad_none"] = ["grad/default/lora_A"]
    case = qoracle.Case(spec)
    assert case.training is True
    np.testing.assert_array_equal(case.grad_output, spec["grad_output"])
    np.testing.assert_array_equal(case.dropout_noise["default"], spec["dropout_noise"]["default"])
    assert case.peft_grad_none == ["grad/default/lora_A"]
    again = qoracle.Case(case.to_dict())
    assert again.training and again.peft_grad_none == ["grad/default/lora_A"]
    np.testing.assert_array_equal(again.grad_output, case.grad_output)


@pytest.mark.parametrize("key,value,message", [
    ("training", 2, "training: expected 0 or 1"),
    ("training", "yes", "training: expected an integer"),
    ("dropout_noise", [1.0], "dropout_noise: expected a dict"),
    ("peft_grad_none", ["grad/default/lora_B"], "peft_grad_none/grad/default/lora_B: no such expected output"),
])
def test_bad_gradient_keys_are_named(rng, key, value, message):
    spec = gradient_spec(rng)
    spec[key] = value
    with pytest.raises(qoracle.Error, match=message.replace("/", ".")):
        qoracle.Case(spec)


@pytest.mark.parametrize("dropout", [False, True])
def test_lora_gradients_are_the_formula(rng, dropout):
    spec = gradient_spec(rng, dropout)
    gx, gA, gB = lora_gradients(spec)
    got = qoracle.reference(spec, ["grad_x", "grad/default/lora_A", "grad/default/lora_B"])
    np.testing.assert_allclose(got["grad_x"], gx, rtol=0, atol=1e-13)
    np.testing.assert_allclose(got["grad/default/lora_A"], gA, rtol=0, atol=1e-13)
    np.testing.assert_allclose(got["grad/default/lora_B"], gB, rtol=0, atol=1e-13)


def test_grad_output_passed_in_replaces_the_cases(rng):
    spec = gradient_spec(rng)
    case = qoracle.Case(spec)
    G = rng.normal(size=spec["grad_output"].shape)
    got = qoracle.reference(case, "grad_x", grad_output=G)["grad_x"]
    np.testing.assert_allclose(got, lora_gradients(dict(spec, grad_output=G))[0], rtol=0, atol=1e-13)
    np.testing.assert_array_equal(case.grad_output, spec["grad_output"])  # the case itself unchanged


def test_committed_gradient_fixtures_have_their_inputs():
    files = sorted((FIXTURES / "peft").glob("peft-*/gradients/gradients_lora_linear_float64.h5"))
    assert files, "no committed gradient fixtures"
    cases = qoracle.load(files[0])
    assert all(c.grad_output is not None and c.grad_output.shape[-1] == c.expected["forward"].shape[-1] for c in cases)
    dropout = [c for c in cases if "dropout" in c.name]
    assert dropout and all(c.training and c.dropout_noise for c in dropout)
