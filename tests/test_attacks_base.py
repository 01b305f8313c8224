"""The attack base class: exact budgets, fp32 with autocast off, the w_grad policy applied
during the attack and restored after; robustness judged without crediting a broken
computation; vanishing gradients counted. (What every registered attack honours is checked
for each of them in test_attacks_contract.py.)"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
import torch
from helpers import PolicyProbe
from torch import nn

from edlnet.attacks import FGSM, PGD, parse_eps, robust_at
from edlnet.attacks.base import Attack, judge

torch.set_num_threads(1)


def tiny_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        PolicyProbe(),
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10),
    )


def batch(n: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 6, 6, generator=g)
    x[:, 0, 0, :] = 0.0  # pixels on the box's faces must stay inside it
    x[:, 1, 0, :] = 1.0
    return x, torch.randint(0, 10, (n,), generator=g)


def test_w_grad_policy_applied_then_restored():
    model = tiny_cnn()
    probe = model[0]
    x, y = batch()
    PGD(model, eps="8/255", steps=2, w_grad="exact")(x, y)
    assert {policy for policy, *_ in probe.seen} == {"exact"}
    assert probe.w_grad == "detached"
    probe.seen.clear()
    PGD(model, eps="8/255", steps=2)(x, y)  # None leaves the layer's own policy
    assert {policy for policy, *_ in probe.seen} == {"detached"}


def test_fp32_without_autocast_even_inside_autocast():
    model = tiny_cnn()
    x, y = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        PGD(model, eps="8/255", steps=2)(x, y)
    assert all(not autocast and dtype == torch.float32 for _, autocast, dtype, _ in model[0].seen)


def test_rejects_bad_inputs_and_non_fp32_models():
    model = tiny_cnn()
    x, y = batch()
    with pytest.raises(ValueError, match="float images"):
        FGSM(model, eps="8/255")((x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FGSM(model, eps="8/255")(x * 2 - 1, y)
    with pytest.raises(ValueError, match="fp32"):
        FGSM(model.to(torch.bfloat16), eps="8/255")(x, y)
    with pytest.raises(ValueError, match="budget"):
        PGD(tiny_cnn(), eps=None)
    with pytest.raises(ValueError, match="norms"):
        FGSM(tiny_cnn(), eps=1, norm="L1")
    with pytest.raises(ValueError, match="w_grad"):
        PGD(tiny_cnn(), eps=1, w_grad="sometimes")


def test_parse_eps_keeps_exact_fractions():
    assert parse_eps("8/255") == (Fraction(8, 255), 8 / 255)
    assert parse_eps(8 / 255)[0] == Fraction(8, 255)  # a float typed as 8/255 is recovered
    assert parse_eps(" 0.5 ") == (Fraction(1, 2), 0.5)
    assert parse_eps("1e-3")[0] == Fraction(1, 1000)
    assert parse_eps(Fraction(2, 255))[1] == 2 / 255
    assert parse_eps(1) == (Fraction(1), 1.0)
    odd = 0.1234567891234
    assert parse_eps(odd)[1] == odd  # no small fraction: the float is kept exactly
    for bad in ("eight", "1/0", -0.1, float("nan"), True):
        with pytest.raises(ValueError):
            parse_eps(bad)


def test_settings_are_json_and_exact():
    settings = PGD(tiny_cnn(), eps="8/255", steps=20, w_grad="exact").settings()
    assert json.loads(json.dumps(settings)) == settings
    assert settings["eps_exact"] == "8/255" and settings["eps"] == 8 / 255
    assert settings["alpha_exact"] == "1/255"  # 2.5 * eps / steps, kept exact
    assert settings["w_grad"] == "exact" and settings["name"] == "pgd"


def test_robust_at_reads_minimal_norms():
    norms = torch.tensor([0.0, 0.3, 0.5, float("inf")])
    assert robust_at(norms, "1/2").tolist() == [False, False, False, True]
    assert robust_at(norms, 0.2).tolist() == [False, True, True, True]


class NanLogitsAbove(nn.Module):
    """A linear classifier whose logits are NaN wherever some pixel exceeds ``threshold``:
    a model that fails on an allowed input."""

    def __init__(self, threshold: float = 0.9) -> None:
        super().__init__()
        self.lin = nn.Linear(3 * 6 * 6, 10)
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        out = self.lin(flat)
        bad = flat.amax(dim=1, keepdim=True) > self.threshold
        return torch.where(bad, torch.full_like(out, float("nan")), out)


class FixedPoint(Attack):
    """An "attack" that returns the points it was given (to test the judging alone)."""

    norms = ("Linf",)

    def __init__(self, model: nn.Module, x_adv: torch.Tensor) -> None:
        super().__init__(model, eps="3/20", norm="Linf")
        self.x_adv = x_adv

    def _perturb(self, x, y):
        return self.x_adv.clone(), {}


def test_judge_never_credits_a_broken_computation():
    model = NanLogitsAbove().eval()
    x = 0.8 * torch.rand(4, 3, 6, 6, generator=torch.Generator().manual_seed(2))  # all < 0.9
    x[1, 0, 0, 0] = 0.8
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    x_adv = x.clone()
    x_adv[0] = float("nan")  # not an image: falls back to the clean image, robust
    x_adv[1, 0, 0, 0] = 0.95  # a valid image (in budget) with NaN logits: broken
    x_adv[2, 0, 0, 0] = float("inf")  # not an image either
    back, robust, invalid = judge(model, x, x_adv, y)
    assert robust.tolist() == [True, False, True, True]
    assert torch.equal(back[0], x[0]) and torch.equal(back[2], x[2]) and torch.equal(back[1], x_adv[1])
    assert invalid == {"nonfinite_images": 2, "nonfinite_logits": 1}
    # Attack.run judges the same way and reports the counts (its budget projection keeps a
    # NaN image NaN; +inf would be clamped into the ball, so example 2 stays clean here).
    x_adv[2] = x[2]
    result = FixedPoint(model, x_adv).run(x, y)
    assert result.robust.tolist() == [True, False, True, True]
    assert result.info["invalid_points"] == {"nonfinite_images": 1, "nonfinite_logits": 1}
    assert bool(torch.isfinite(result.x_adv).all()) and torch.equal(result.x_adv[0], x[0])
    clean = FixedPoint(model, x).run(x, y)
    assert bool(clean.robust.all()) and "invalid_points" not in clean.info


class _FlatAwayFromStart(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, start):
        ctx.save_for_backward(x, start)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        x, start = ctx.saved_tensors
        moved = (x - start).flatten(1).abs().amax(dim=1) > 0
        return grad * torch.where(moved, 1e-6, 1.0).view(-1, *([1] * (x.dim() - 1))), None


class FlatAwayFromStart(nn.Module):
    """Identity whose input gradient shrinks by 1e-6 once the input leaves ``start``."""

    def __init__(self, start: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("start", start)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FlatAwayFromStart.apply(x, self.start)


def test_vanishing_gradients_are_counted_against_the_first_step():
    x, y = batch()
    model = nn.Sequential(FlatAwayFromStart(x), nn.Flatten(), nn.Linear(3 * 6 * 6, 10)).eval()
    result = PGD(model, eps="8/255", steps=4, random_start=False).run(x, y)
    stats = result.info["grad_stats"]
    # The first gradient (at x) sets the scale; the three later ones are 1e-6 of it.
    assert stats == {"evaluations": 16, "nonfinite": 0, "zero": 0, "vanishing": 12}
    plain = PGD(model[1:], eps="8/255", steps=4, random_start=False).run(x, y)
    assert plain.info["grad_stats"]["vanishing"] == 0


def test_attacks_differentiate_the_input_only_and_restore_requires_grad():
    """Inside an attack the parameters are frozen (a fused dictionary layer would otherwise
    compute weight gradients nobody uses); the input gradient is bitwise the same, and every
    parameter's requires_grad and .grad come back as they were."""
    from edlnet.attacks.base import input_gradients_only
    from edlnet.layers import DictConv2d

    torch.manual_seed(0)
    model = nn.Sequential(
        DictConv2d(3, 4, 3, padding=1, n_steps=2, mode="elastic"), nn.Flatten(), nn.LazyLinear(3)
    )
    x = torch.rand(2, 3, 6, 6)
    model(x)
    model.eval()  # in training mode every forward advances the power iteration of the norm
    frozen = model[2].bias
    frozen.requires_grad_(False)

    def input_grad():
        xa = x.clone().requires_grad_(True)
        return torch.autograd.grad(model(xa).square().sum(), xa)[0]

    plain = input_grad()
    with input_gradients_only(model):
        assert not any(p.requires_grad for p in model.parameters())
        inside = input_grad()
    assert torch.equal(plain, inside)
    assert [p.requires_grad for p in model.parameters()] == [p is not frozen for p in model.parameters()]
    seen = []
    probe = model[0].weight.register_hook(lambda g: seen.append(g))
    PGD(model, eps="8/255", steps=2)(x, torch.tensor([0, 1]))
    probe.remove()
    assert not seen and all(p.grad is None for p in model.parameters())
