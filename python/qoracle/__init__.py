"""qoracle: a numerical oracle for OFT, LoRA and DoRA adapters on quantized linear layers.

Backed by qoracle's C++ double-precision reference (the same code as the `qoracle` CLI):

    cases = qoracle.load("fixtures/peft")              # golden fixture cases
    y64 = qoracle.reference(case)["forward"]           # the float64 truth
    assert qoracle.judge(case, my_kernel(case))        # your result, judged like `qoracle check`

`qoracle.check_layer` and `qoracle.export_case` take a live PEFT layer, `qoracle.check_model` and
`qoracle.export_model` a whole PEFT model; they need torch + PEFT (qoracle.peft); `qoracle.testing.cases` parametrizes a pytest test over a fixture tree.
"""
from ._check import Table, check
from ._core import Case, Error, Judgement
from ._judge import judge
from ._load import fixture_files, load, read_file
from ._reference import reference

__all__ = ["Case", "Error", "Judgement", "Table", "load", "read_file", "fixture_files", "reference", "judge", "check", "check_layer",
           "export_case", "layer_case", "check_model", "export_model"]
__version__ = "0.1.0"


def __getattr__(name):
    # The PEFT part imports torch; only when asked for.
    if name in ("check_layer", "export_case", "layer_case", "check_model", "export_model"):
        try:
            from . import peft
        except ImportError as e:
            raise ImportError(f"qoracle.{name} reads live PEFT layers and needs torch and peft: {e}") from e
        return getattr(peft, name)
    raise AttributeError(f"module 'qoracle' has no attribute '{name}'")
