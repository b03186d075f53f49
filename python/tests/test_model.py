"""check_model on a small PEFT model: the layers checked on several threads give the same rows, in
module order, as one after the other; a planted fault fails exactly its layer; bad arguments are
qoracle.Error. Needs torch and PEFT (the exporter's venv: scripts/check-peft-model.sh --pytest);
skipped in CI, which has numpy only."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

import qoracle  # noqa: E402
from qoracle.peft import check_model  # noqa: E402

SEED = 31


class Stack(torch.nn.Module):
    """Six linear layers of mixed widths: enough layers that four workers interleave."""

    def __init__(self, widths=(48, 64, 32, 64, 96, 64, 40)):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x):
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x


def peft_model(kind):
    from peft import LoraConfig, OFTConfig, get_peft_model
    torch.manual_seed(SEED)
    targets = [f"layers.{i}" for i in range(6)]
    if kind == "oft":
        config = OFTConfig(r=0, oft_block_size=8, target_modules=targets, init_weights=False)
    else:
        config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False, use_dora=kind == "dora")
    return get_peft_model(Stack().double(), config).eval()


def inputs():
    return torch.randn(3, 5, 48, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64)


def rows(report):
    return [(r.name, r.verdict, [(row.output, row.status, row.max_abs_error, row.error_vs_oracle, row.allowed)
                                 for row in r.table]) for r in report]


@pytest.mark.parametrize("kind", ["lora", "dora", "oft"])
def test_parallel_rows_equal_serial_rows_in_module_order(kind):
    model = peft_model(kind)
    serial = check_model(model, inputs(), workers=1, progress=False)
    parallel = check_model(model, inputs(), workers=4, progress=False)
    assert serial and parallel, serial.summary()
    assert [r.name for r in parallel] == [name for name, _ in model.named_modules() if name.endswith(tuple("012345"))]
    assert rows(parallel) == rows(serial)  # every number, to the bit
    assert (serial.workers, parallel.workers) == (1, 4)
    assert all(r.seconds >= r.peft_seconds > 0 for r in parallel)
    assert "4 at once" in parallel.summary()


def test_a_planted_fault_fails_its_layer_only_on_every_thread_count():
    model = peft_model("lora")
    target = "base_model.model.layers.3"
    handle = model.get_submodule(target).lora_B["default"].register_forward_hook(lambda m, a, out: out + 1e-6)
    try:
        for workers in (1, 3):
            report = check_model(model, inputs(), workers=workers, progress=False)
            assert [r.name for r in report.failures] == [target], report.summary()
            assert report[3].verdict == "FAIL" and not report
    finally:
        handle.remove()
    assert check_model(model, inputs(), workers=3, progress=False)


def test_the_reference_thread_count_is_restored():
    before = qoracle._core.reference_threads()
    try:
        qoracle._core.set_reference_threads(3)
        check_model(peft_model("lora"), inputs(), workers=2, progress=False)
        assert qoracle._core.reference_threads() == 3
    finally:
        qoracle._core.set_reference_threads(before)


@pytest.mark.parametrize("workers", [0, -1, 2.0, "2", True, 5000])
def test_bad_worker_counts_are_errors(workers):
    with pytest.raises(qoracle.Error, match=r"check_model: workers: expected a thread count from 1 to 1024, got"):
        check_model(peft_model("lora"), inputs(), workers=workers, progress=False)


def test_a_bad_thread_count_in_the_environment_is_an_error(monkeypatch):
    monkeypatch.setenv("QORACLE_CHECK_THREADS", "many")
    with pytest.raises(qoracle.Error, match=r"QORACLE_CHECK_THREADS: expected a thread count from 1 to 1024, got 'many'"):
        check_model(peft_model("lora"), inputs(), progress=False)
    monkeypatch.setenv("QORACLE_CHECK_THREADS", "2")
    assert check_model(peft_model("lora"), inputs(), progress=False).workers == 2


def test_a_progress_line_per_layer_goes_to_stderr(capsys):
    check_model(peft_model("lora"), inputs(), workers=2, progress=True)
    err = capsys.readouterr().err
    assert "6/6" in err or "6/6 [" in err or "| 6/6" in err, err[-500:]


def test_bad_inputs_and_max_tokens_are_errors():
    with pytest.raises(qoracle.Error, match="inputs: expected a dict of keyword arguments or a torch.Tensor, got list"):
        check_model(peft_model("lora"), [inputs()], progress=False)
    with pytest.raises(qoracle.Error, match="max_tokens: expected a positive int, got 0"):
        check_model(peft_model("lora"), inputs(), max_tokens=0, progress=False)
