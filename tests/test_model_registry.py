"""The model registry: what @register_model records, and the CLI commands that read it."""

import contextlib
import io

import pytest
import torch
from torch import nn

import edlnet
from edlnet.cli import main
from edlnet.models import registry
from edlnet.registry import Registry


class Tiny(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(1, num_classes)

    def forward(self, x):
        return self.fc(x.mean((1, 2, 3)).unsqueeze(1))


@pytest.fixture
def empty_registry(monkeypatch):
    """A registry without the library's models, so test registrations do not leak."""
    monkeypatch.setattr(registry, "MODELS", Registry("model"))


def test_bare_and_configured_decorators_record_entries(empty_registry):
    @edlnet.register_model
    def plain_net(num_classes: int = 10) -> nn.Module:
        return Tiny(num_classes)

    @edlnet.register_model(input_size=(1, 28, 28), small_options={"depth": 1})
    def gray_net(num_classes: int = 10, depth: int = 3) -> nn.Module:
        return Tiny(num_classes)

    entry = edlnet.models.model_entry("plain_net")
    assert entry.build is plain_net and entry.input_size == (3, 32, 32)
    assert not entry.builds_own_dictionaries and entry.small_options == {}
    gray = edlnet.models.model_entry("gray_net")
    assert gray.input_size == (1, 28, 28) and gray.small_options == {"depth": 1}
    assert edlnet.list_models() == ["gray_net", "plain_net"]
    model = edlnet.create_model("gray_net", num_classes=3)
    assert model(torch.rand(2, *gray.input_size)).shape == (2, 3)


def test_registration_errors_name_the_problem(empty_registry):
    @edlnet.register_model
    def twice(num_classes: int = 10) -> nn.Module:
        return Tiny(num_classes)

    with pytest.raises(ValueError, match="model 'twice' is registered twice"):
        edlnet.register_model(twice)
    with pytest.raises(ValueError, match=r"input_size is \(channels, height, width\)"):
        edlnet.register_model(input_size=(32, 32))
    with pytest.raises(ValueError, match="unknown model 'nope'; registered models: twice"):
        edlnet.create_model("nope")


def test_every_library_model_is_registered_with_a_size():
    names = edlnet.list_models()
    assert {"resnet18", "resnet18_tiny", "wide_resnet34_10", "deep_pursuit"} <= set(names)
    for name in names:
        entry = edlnet.models.model_entry(name)
        assert entry.name == name and len(entry.input_size) == 3
    assert edlnet.models.model_entry("preact_resnet18_tiny").input_size == (3, 64, 64)
    assert edlnet.models.model_entry("layered_basis_pursuit").builds_own_dictionaries


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_models_command_lists_the_registry():
    code, out, _ = _run(["models"])
    assert code == 0 and out.split() == edlnet.list_models()


def test_summary_runs_a_batch_of_the_registered_input_size():
    code, out, _ = _run(["summary", "preact_resnet18_tiny", "--width", "4", "--batch", "1", "--dl", "none"])
    assert code == 0 and "batch (1, 3, 64, 64) -> logits (1, 10)" in out
    assert "44,510 parameters" in out  # --width reached the entry function
    code, _, err = _run(["summary", "resnet19"])
    assert code == 2 and "unknown model 'resnet19'" in err
