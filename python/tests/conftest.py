"""Shared paths and helpers of the package's tests (CI runs them with numpy only: no torch)."""
import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
SEED = 2025  # every random input below; printed on failure by pytest's report header


def pytest_report_header(config):
    return f"qoracle python tests: seed={SEED}, fixtures={FIXTURES}"


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


@pytest.fixture
def cli():
    """The built qoracle CLI (scripts/test-python.sh sets QORACLE_CLI), for agreement checks."""
    path = os.environ.get("QORACLE_CLI")
    if not path or not os.path.exists(path):
        pytest.skip("QORACLE_CLI not set to a built qoracle binary")
    return path


def lora_spec(rng, in_features=6, out_features=5, r=2, alpha=4.0, lead=(2, 3), **adapter):
    """A LoRA layer spec with seeded N(0, 0.3^2) tensors (fixtures/SCHEMA.md layout)."""
    spec = {
        "name": "lora_spec",
        "layer_kind": "lora/linear",
        "base": {"weight": rng.normal(0, 0.3, (out_features, in_features)), "bias": rng.normal(0, 0.3, out_features)},
        "adapters": {"default": dict(r=r, lora_alpha=alpha, use_rslora=False, lora_bias=False, use_dora=False,
                                     lora_A=rng.normal(0, 0.3, (r, in_features)),
                                     lora_B=rng.normal(0, 0.3, (out_features, r)))},
        "x": rng.normal(0, 1.0, (*lead, in_features)),
    }
    spec["adapters"]["default"].update(adapter)
    return spec
