"""Contract every attack honours: exact budgets, [0, 1] box, eval mode restored, fp32,
autocast off, w_grad policy applied during the attack and restored after."""
from __future__ import annotations

import importlib.util
import json
from fractions import Fraction

import pytest
import torch
from torch import nn

from edlnet.attacks import (FGSM, PGD, CarliniWagnerL2, SparseFool, Square, parse_eps,
                            perturbation_norm, robust_at)

torch.set_num_threads(1)

HAS_REFERENCE = any(importlib.util.find_spec(p) for p in ("pyautoattack", "autoattack"))


class PolicyProbe(nn.Module):
    """Identity that records the w_grad policy, autocast state, dtype and mode it ran under."""

    def __init__(self, policy: str = "detached") -> None:
        super().__init__()
        self.w_grad = policy
        self.seen: list[tuple] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.w_grad, torch.is_autocast_enabled("cpu"), x.dtype, self.training))
        return x


def tiny_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(PolicyProbe(), nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def batch(n: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 6, 6, generator=g)
    x[:, 0, 0, :] = 0.0  # pixels on the box's faces must stay inside it
    x[:, 1, 0, :] = 1.0
    return x, torch.randint(0, 10, (n,), generator=g)


ATTACKS = {
    "fgsm-linf": lambda m: FGSM(m, eps="8/255"),
    "fgsm-l2": lambda m: FGSM(m, eps="1/2", norm="L2"),
    "pgd-linf": lambda m: PGD(m, eps="8/255", steps=3, restarts=2),
    "pgd-l2": lambda m: PGD(m, eps="1/2", norm="L2", steps=3, loss="margin"),
    "cw-l2": lambda m: CarliniWagnerL2(m, eps="1/2", steps=5, binary_search_steps=2),
    "sparsefool": lambda m: SparseFool(m, eps=3, max_iter=3, deepfool_max_iter=5, n_candidates=3),
    "square": lambda m: Square(m, eps="8/255", n_queries=10),
}
# Square runs the reference implementation, an optional dependency.
NAMES = [pytest.param(name, marks=pytest.mark.skipif(
    name == "square" and not HAS_REFERENCE, reason="pyautoattack not installed")) for name in ATTACKS]


@pytest.mark.parametrize("name", NAMES)
def test_budget_and_box_hold(name):
    model = tiny_cnn()
    x, y = batch()
    attack = ATTACKS[name](model)
    x_adv = attack(x, y)
    assert x_adv.dtype == torch.float32 and not x_adv.requires_grad
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    size = perturbation_norm(x_adv - x, attack.norm)
    assert (size <= attack.eps * (1 + 1e-6) + 1e-7).all(), size


@pytest.mark.parametrize("name", NAMES)
def test_modes_restored_and_eval_used(name):
    model = tiny_cnn()
    model.train()
    model[2].eval()  # a submodule deliberately in eval inside a training model
    probe = model[0]
    stats = model[2].running_mean.clone()
    x, y = batch()
    ATTACKS[name](model)(x, y)
    assert model.training and probe.training and not model[2].training
    assert torch.equal(model[2].running_mean, stats)  # BatchNorm never saw a training step
    assert probe.seen and not any(training for *_, training in probe.seen)
    assert all(p.grad is None for p in model.parameters())  # only input gradients


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
    for name, make in ATTACKS.items():
        assert json.loads(json.dumps(make(tiny_cnn()).settings()))["name"], name


def test_robust_at_reads_minimal_norms():
    norms = torch.tensor([0.0, 0.3, 0.5, float("inf")])
    assert robust_at(norms, "1/2").tolist() == [False, False, False, True]
    assert robust_at(norms, 0.2).tolist() == [False, True, True, True]
