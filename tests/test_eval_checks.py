"""Gradient-masking checks: they trip on deliberately masked models (zero, noisy and exploding
input gradients, and a model whose unmasked twin transfers) and stay quiet on plain models.
A check that could not run (transfer without a surrogate) is "skipped", never "passed", so
robustness is established (``checks_passed`` True) only when every applicable check ran."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edlnet.data import load_dataset
from edlnet.evaluation import evaluate
from edlnet.evaluation.checks import CHECK_NAMES, checks_passed, checks_summary

torch.set_num_threads(1)
pytest.importorskip("pyautoattack")  # Square runs through the reference implementation

SUITE = {
    "name": "toy",
    "main": {"norm": "Linf", "eps": "8/255"},
    "entries": [
        {"name": "FGSM", "attack": "fgsm", "eps": "8/255"},
        {"name": "PGD-5", "attack": "pgd", "eps": "8/255", "settings": {"steps": 5}},
        {"name": "Square", "attack": "square", "eps": "8/255", "settings": {"n_queries": 60}},
    ],
    "checks": {
        "large_eps": {"steps": 5},
        "more_steps": {"steps": 10, "restarts": 2},
        "gradients": {"n_probe": 16},
    },
}


class ZeroGradient(nn.Module):
    """Identity in value, zero input gradient (a non-differentiable front, like quantization)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach() + 0 * x


class _Noise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Huge, random, finite: what shattered or exploding-but-clipped gradients look like.
        return torch.randn_like(grad) * 1e6


class NoisyGradient(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Noise.apply(x)


class _Explode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("inf")  # overflow, as exact gradients through the reweighting can


class ExplodingGradient(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Explode.apply(x)


def linear(seed: int = 0, front: nn.Module | None = None) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(3 * 8 * 8, 10)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 0.2)
        lin.bias.zero_()
    layers = ([front] if front is not None else []) + [nn.Flatten(), lin]
    return nn.Sequential(*layers).eval()


def toy_data(model: nn.Module, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] labelled by the model itself, so every example gets attacked."""
    x = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return x, y


def verdicts(record: dict) -> dict[str, bool | None]:
    return {c["name"]: c["passed"] for c in record["checks"]}


def statuses(record: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in record["checks"]}


def run(model: nn.Module, x: torch.Tensor, y: torch.Tensor, **kw) -> dict:
    kw.setdefault("log", None)
    return evaluate(model, x, y, suite=SUITE, batch_size=8, **kw)


def test_quiet_on_a_plain_linear_model():
    model = linear()
    x, y = toy_data(model)
    record = run(model, x, y, surrogate=linear(seed=5))
    v, s = verdicts(record), statuses(record)
    assert [c["name"] for c in record["checks"]] == list(CHECK_NAMES)
    assert record["checks_passed"] is True, record["checks"]
    for name in (
        "large_eps",
        "more_steps",
        "single_step",
        "black_box",
        "transfer",
        "input_gradients",
        "gradient_agreement",
        "deterministic",
    ):
        assert v[name] is True and s[name] == "passed", name
    # Nothing to check is not a skipped check: no budget sweep, no AutoAttack entry.
    assert v["budget_monotone"] is None and s["budget_monotone"] == "not applicable"
    assert v["autoattack_flags"] is None and s["autoattack_flags"] == "not applicable"
    assert record["checks_summary"]["line"] == "all 8 checks ran and passed; 2 not applicable"
    # The checks' own comparison attacks ran cascaded: only on what the suite left robust.
    square = record["entries"]["check/square"]
    assert square["cascade"] is True and square["attack_settings"]["n_queries"] >= 1000


def test_without_a_surrogate_robustness_is_not_established():
    model = linear()
    x, y = toy_data(model)
    record = run(model, x, y)
    transfer = next(c for c in record["checks"] if c["name"] == "transfer")
    assert transfer["status"] == "skipped" and transfer["passed"] is None
    assert "no surrogate" in transfer["detail"] and "check/transfer" not in record["entries"]
    assert not any(c["status"] == "failed" for c in record["checks"])
    assert record["checks_passed"] is None  # every other check passed; that is not enough
    line = record["checks_summary"]["line"]
    assert "skipped: transfer" in line and "not established" in line, line


def test_checks_passed_needs_every_applicable_check_to_pass():
    def c(name: str, status: str) -> dict:
        passed = {"passed": True, "failed": False}.get(status)
        return {"name": name, "status": status, "passed": passed}

    ok = [c("a", "passed"), c("b", "passed"), c("c", "not applicable")]
    assert checks_passed(ok) is True
    assert checks_summary(ok)["line"] == "all 2 checks ran and passed; 1 not applicable"
    skipped = ok + [c("d", "skipped")]
    assert checks_passed(skipped) is None
    assert "skipped: d" in checks_summary(skipped)["line"]
    failed = skipped + [c("e", "failed")]
    assert checks_passed(failed) is False
    summary = checks_summary(failed)
    assert summary["line"].startswith("1 of 3 checks that ran FAILED (e)") and summary["failed"] == 1
    assert summary["skipped"] == 1 and summary["applicable"] == 4 and summary["total"] == 5
    nothing = [c("a", "skipped"), c("b", "not applicable")]
    assert checks_passed(nothing) is None
    assert checks_summary(nothing)["line"].startswith("no check could run")
    assert checks_passed([c("a", "not applicable")]) is None  # nothing ran at all


def small_cnn(seed: int) -> nn.Module:
    """A CNN trained 30 SGD steps on the bundled sample (32x32)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)
    )
    data = load_dataset("cifar10-sample")
    x_train = data.x_train[:256].float() / 255
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(30):
        batch = slice((step * 64) % 256, (step * 64) % 256 + 64)
        loss = nn.functional.cross_entropy(model(x_train[batch]), data.y_train[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_quiet_on_a_small_cnn_trained_a_few_steps():
    model = small_cnn(seed=0)
    data = load_dataset("cifar10-sample")
    # Another plain CNN (other seed) as the transfer surrogate, so every check can run.
    record = run(model, data.x_test[:32], data.y_test[:32], surrogate=small_cnn(seed=1))
    assert record["clean"] > 0.15  # it learned something, so the checks have work to do
    assert statuses(record)["transfer"] == "passed"
    assert record["checks_passed"] is True, record["checks"]


def test_zero_gradient_front_trips_the_checks():
    model = linear(front=ZeroGradient())
    x, y = toy_data(model)
    record = run(model, x, y, surrogate=linear())
    v = verdicts(record)
    assert record["checks_passed"] is False
    assert all(c["status"] == "failed" for c in record["checks"] if c["passed"] is False)
    assert v["input_gradients"] is False  # all-zero gradients
    assert v["gradient_agreement"] is False  # the function changes where the gradient says it does not
    assert v["large_eps"] is False  # PGD from the clean image goes nowhere
    assert v["black_box"] is False  # Square breaks what FGSM/PGD cannot
    assert v["transfer"] is False  # so does transfer from the unmasked twin


def test_noisy_gradient_front_trips_the_checks():
    model = linear(front=NoisyGradient())
    x, y = toy_data(model)
    record = run(model, x, y)
    v = verdicts(record)
    assert v["input_gradients"] is True  # finite and non-zero: this check cannot see it ...
    assert v["gradient_agreement"] is False  # ... finite differences can
    assert v["black_box"] is False
    assert record["checks_passed"] is False


def test_exploding_gradient_front_trips_the_checks():
    model = linear(front=ExplodingGradient())
    x, y = toy_data(model)
    v = verdicts(run(model, x, y))
    assert v["input_gradients"] is False  # non-finite
    assert v["gradient_agreement"] is False


def test_failed_checks_are_said_in_the_report(tmp_path):
    model = linear(front=ZeroGradient())
    x, y = toy_data(model)
    lines: list[str] = []
    run(model, x, y, out_dir=tmp_path, log=lines.append)
    report = (tmp_path / "results.md").read_text()
    assert "Warning" in report and "**FAIL**" in report
    assert any(line.startswith("WARNING: gradient-masking checks failed") for line in lines)
    assert any(line.startswith("check large_eps: FAIL") for line in lines)
