"""AutoAttack wrapper over the reference implementation (optional dependency pyautoattack)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from edlnet.attacks import AutoAttack, perturbation_norm

torch.set_num_threads(1)
pytest.importorskip("pyautoattack")


class PolicyProbe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w_grad = "detached"
        self.seen: set[str] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.add(self.w_grad)
        return x


def tiny_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(PolicyProbe(), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def test_custom_autoattack_runs_under_policy_and_reports():
    model = tiny_cnn().train()
    x = torch.rand(6, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)  # all clean-correct, so every attack has work to do
    model[0].seen.clear()
    rng = torch.get_rng_state()
    attack = AutoAttack(
        model, eps="16/255", attacks=["apgd-ce", "apgd-t"], n_iter=10, n_classes=10, w_grad="exact"
    )
    result = attack.run(x, y)
    assert torch.equal(torch.get_rng_state(), rng)  # the reference reseeds; we restore
    assert model.training and model[0].seen == {"exact"} and model[0].w_grad == "detached"
    assert (perturbation_norm(result.x_adv - x, "Linf") <= 16 / 255 + 1e-6).all()
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    info = result.info
    assert info["attacks"] == ["apgd-ce", "apgd-t"] and isinstance(info["flags"], list)
    assert info["log"] and info["robust_accuracy"]["clean"] == 1.0
    assert info["robust_accuracy"]["apgd-ce"] >= result.accuracy
    assert result.accuracy < 1.0  # 16/255 on an untrained net breaks something
    settings = attack.settings()
    assert json.loads(json.dumps(settings)) == settings
    assert settings["version"] == "custom" and settings["eps_exact"] == "16/255"


def test_autoattack_flags_zero_gradients():
    # A model whose output ignores its input has zero input gradients: the reference's
    # gradient-masking check must surface in the flags.
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.logits = nn.Parameter(torch.tensor([2.0, 0.0, -1.0, -2.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.logits.expand(x.shape[0], -1) + 0 * x.flatten(1).sum(1, keepdim=True)

    x = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(3, dtype=torch.long)
    result = AutoAttack(Constant(), eps="8/255", attacks="apgd-t", n_iter=5).run(x, y)
    assert result.robust.all()
    assert any("zero gradient" in flag for flag in result.info["flags"])


def test_standard_version_cascade_is_monotone():
    model = tiny_cnn()
    x = torch.rand(4, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    # A budget small enough that the cascade reaches its last attack.
    result = AutoAttack(model, eps="1/255", n_iter=3, n_queries=20).run(x, y)
    accuracy = result.info["robust_accuracy"]
    assert result.info["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert list(accuracy) == ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    steps = list(accuracy.values())
    assert steps == sorted(steps, reverse=True)  # each attack only removes robust points
    assert steps[-1] == pytest.approx(result.accuracy)


def test_apgd_breaks_exactly_the_breakable_points_of_a_linear_model():
    g = torch.Generator().manual_seed(0)
    lin = nn.Linear(12, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(2, 12, generator=g))
        lin.bias.copy_(torch.randn(2, generator=g))
    model = nn.Sequential(nn.Flatten(), lin)
    x = 0.3 + 0.4 * torch.rand(16, 3, 2, 2, generator=g)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    w, c = lin.weight[y] - lin.weight[1 - y], lin.bias[y] - lin.bias[1 - y]
    with torch.no_grad():
        best_margin = (x.flatten(1) * w).sum(1) + c - 0.25 * w.abs().sum(1)
    result = AutoAttack(model, eps=0.25, attacks="apgd-ce", n_iter=20).run(x, y)
    assert torch.equal(result.robust, best_margin > 0)


def test_version_and_attack_names_are_checked():
    model = tiny_cnn()
    with pytest.raises(ValueError, match="unknown AutoAttack attacks"):
        AutoAttack(model, eps="8/255", attacks=["pgd"])
    with pytest.raises(ValueError, match="version='custom'"):
        AutoAttack(model, eps="8/255", version="standard", attacks=["apgd-ce"])
    assert AutoAttack(model, eps="8/255").settings()["version"] == "standard"


def test_gradient_guard_keeps_the_direction_of_infinite_gradients():
    """NaN carries no direction (0); an infinite coordinate dominates its example's gradient, so
    the guard keeps that limit direction instead of zeroing the most sensitive pixels."""
    from edlnet.attacks.autoattack import GradientGuard

    guard = GradientGuard(torch.nn.Identity())
    grad = torch.tensor(
        [[1.0, float("inf"), -float("inf"), 2.0], [float("nan"), 3.0, -1.0, 0.5], [0.25, -0.5, 1.0, 2.0]]
    )
    out = guard._sanitize(grad)
    assert torch.equal(out[0], torch.tensor([0.0, 1.0, -1.0, 0.0]))
    assert torch.equal(out[1], torch.tensor([0.0, 3.0, -1.0, 0.5]))
    assert torch.equal(out[2], grad[2])
    assert guard.stats == {"evaluations": 3, "nonfinite": 2, "zero": 0}
