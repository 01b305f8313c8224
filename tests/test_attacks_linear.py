"""Attacks against closed forms on a linear two-class model f(x) = Wx + b.

For the true class y the margin is m(x) = w.x + c with w = W_y - W_other. Away from the box's
faces, the strongest Linf perturbation of size eps lowers it by eps*||w||_1 (delta =
-eps*sign(w)), the strongest L2 one by eps*||w||_2 (delta = -eps*w/||w||_2); the smallest L2
perturbation reaching the boundary has norm m/||w||_2; the smallest L1 one inside the box is
the greedy fill of coordinates by decreasing |w_j| (a fractional knapsack).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from edlnet.attacks import FGSM, PGD, CarliniWagnerL2, SparseFool, Square, cw_accuracy, margin

torch.set_num_threads(1)

SHAPE = (3, 2, 2)


def linear_problem(n: int = 16):
    g = torch.Generator().manual_seed(0)
    lin = nn.Linear(12, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(2, 12, generator=g))
        lin.bias.copy_(torch.randn(2, generator=g))
    model = nn.Sequential(nn.Flatten(), lin)
    x = 0.3 + 0.4 * torch.rand(n, *SHAPE, generator=g)
    with torch.no_grad():
        y = model(x).argmax(dim=1)  # every example starts correctly classified
    w = (lin.weight[y] - lin.weight[1 - y]).detach()
    c = (lin.bias[y] - lin.bias[1 - y]).detach()
    return model, x, y, w, c


def true_margin(x, w, c):
    return (x.flatten(1) * w).sum(dim=1) + c


LINF_EPS, L2_EPS = 0.25, 0.55


def optimum(x, w, c, norm):
    """Margin after the optimal attack, checking that the box does not bind there."""
    if norm == "Linf":
        delta, drop = -LINF_EPS * w.sign(), LINF_EPS * w.abs().sum(dim=1)
    else:
        delta = -L2_EPS * w / w.norm(dim=1, keepdim=True)
        drop = L2_EPS * w.norm(dim=1)
    moved = x.flatten(1) + delta
    assert moved.min() >= 0 and moved.max() <= 1, "test premise: box must not bind"
    star = true_margin(x, w, c) - drop
    assert (star > 0).any() and (star < 0).any(), "test premise: robust and non-robust examples"
    return star


@pytest.mark.parametrize("norm", ["Linf", "L2"])
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_fgsm_hits_closed_form(norm, loss):
    model, x, y, w, c = linear_problem()
    eps = LINF_EPS if norm == "Linf" else L2_EPS
    x_adv = FGSM(model, eps=eps, norm=norm, loss=loss)(x, y)
    assert torch.allclose(true_margin(x_adv, w, c), optimum(x, w, c, norm), atol=1e-5)


@pytest.mark.parametrize("norm", ["Linf", "L2"])
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_pgd_hits_closed_form(norm, loss):
    model, x, y, w, c = linear_problem()
    eps = LINF_EPS if norm == "Linf" else L2_EPS
    # In L2 a random start leaves an orthogonal component that projection only shrinks
    # geometrically, so the exact optimum needs the deterministic start.
    attack = PGD(model, eps=eps, norm=norm, steps=10, loss=loss, random_start=norm == "Linf")
    result = attack.run(x, y)
    star = optimum(x, w, c, norm)
    robust = star > 0
    after = true_margin(result.x_adv, w, c)
    assert torch.allclose(after[robust], star[robust], atol=1e-5)  # highest loss = the optimum
    assert not result.robust[~robust].any()  # every breakable example is broken
    assert (after[~robust] >= star[~robust] - 1e-5).all()  # and nothing beats the optimum
    assert torch.equal(result.robust, robust)


def test_pgd_keeps_first_success_not_last_iterate():
    model, x, y, w, c = linear_problem()
    star = optimum(x, w, c, "Linf")
    result = PGD(model, eps=LINF_EPS, steps=40, random_start=False).run(x, y)
    breakable = star < 0
    # From x, steps of alpha = eps/16 in the optimal direction: the kept point is the first
    # one across the boundary, so its margin lies within one step's drop below zero.
    after = true_margin(result.x_adv, w, c)
    step_drop = (LINF_EPS / 16) * w.abs().sum(dim=1)
    assert (after[breakable] < 0).all()
    assert (after[breakable] >= -step_drop[breakable] - 1e-5).all()


def test_pgd_restarts_never_worse_per_example():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5))
    with torch.no_grad():
        model[1].weight.mul_(3)  # curved enough that start points matter
    x = torch.rand(24, *SHAPE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    one = PGD(model, eps="8/255", steps=2, loss="margin").run(x, y)
    many = PGD(model, eps="8/255", steps=2, loss="margin", restarts=5).run(x, y)
    with torch.no_grad():
        loss_one, loss_many = margin(model(one.x_adv), y), margin(model(many.x_adv), y)
    assert (~many.robust | one.robust).all()  # whatever one run fooled, restarts fool
    both_robust = one.robust & many.robust
    assert (loss_many[both_robust] >= loss_one[both_robust] - 1e-6).all()
    # ... and the restarts did find something better somewhere.
    assert ((many.robust != one.robust) | (loss_many > loss_one + 1e-4)).any()


def test_cw_finds_minimal_l2_distance():
    model, x, y, w, c = linear_problem(n=6)
    distance = true_margin(x, w, c) / w.norm(dim=1)
    result = CarliniWagnerL2(model, steps=100, lr=0.05, binary_search_steps=6, initial_const=1.0).run(x, y)
    norms = result.info["norm"]
    assert result.info["found"].all() and not result.robust.any()
    assert (norms >= distance * (1 - 1e-4)).all()  # nothing beats the closed form
    assert torch.allclose(norms, distance, rtol=1e-2)
    # With a budget, examples beyond it come back clean and count as robust.
    budget = float(distance.median())
    bounded = CarliniWagnerL2(
        model, eps=budget, steps=100, lr=0.05, binary_search_steps=6, initial_const=1.0
    ).run(x, y)
    assert torch.equal(bounded.robust, norms > budget)
    assert torch.equal(bounded.x_adv[bounded.robust], x[bounded.robust])


def test_cw_accuracy_curve_from_one_run():
    model, x, y, w, c = linear_problem(n=6)
    distance = true_margin(x, w, c) / w.norm(dim=1)
    acc = cw_accuracy(
        model, x, y, ["1/10", 0.6], steps=100, lr=0.05, binary_search_steps=6, initial_const=1.0
    )
    assert acc["clean"] == 1.0
    assert acc["1/10"] == pytest.approx(float((distance > 0.1).float().mean()))
    assert acc["3/5"] == pytest.approx(float((distance > 0.6).float().mean()))


def knapsack_l1(x, w, c):
    """Smallest L1 perturbation inside [0, 1] that brings the margin to zero, and its L0."""
    out = []
    for xi, wi, need in zip(x.flatten(1), w, true_margin(x, w, c)):
        need, l1, l0 = float(need), 0.0, 0
        for j in wi.abs().argsort(descending=True).tolist():
            room = float(xi[j]) if wi[j] > 0 else 1 - float(xi[j])
            gain = abs(float(wi[j])) * room
            l0 += 1
            if gain >= need:
                l1 += need / abs(float(wi[j]))
                break
            need, l1 = need - gain, l1 + room
        out.append((l1, l0))
    return torch.tensor(out)


def test_sparsefool_lambda_one_is_the_sparse_optimum():
    model, x, y, w, c = linear_problem()
    expected = knapsack_l1(x, w, c)
    result = SparseFool(model, lambda_=1.0).run(x, y)
    assert not result.robust.any()
    l1, l0 = result.info["norm"], result.info["l0"]
    assert (l1 >= expected[:, 0] * (1 - 1e-4)).all()
    # Within the 2% overshoot and the solver's small step past the plane.
    assert torch.allclose(l1, expected[:, 0], rtol=0.03)
    assert torch.equal(l0, expected[:, 1])
    assert (l0 < 12).all()  # sparse: a few of the 12 coordinates move


def test_sparsefool_default_flips_labels():
    model, x, y, *_ = linear_problem()
    result = SparseFool(model).run(x, y)
    assert not result.robust.any() and result.info["found"].all()
    assert (result.info["iterations"] == 1).all()  # one linearization suffices for a linear model


@pytest.mark.skipif(
    not any(importlib.util.find_spec(p) for p in ("pyautoattack", "autoattack")),
    reason="Square needs the optional pyautoattack",
)
def test_square_never_beats_the_closed_form():
    model, x, y, w, c = linear_problem()
    star = optimum(x, w, c, "Linf")
    result = Square(model, eps=LINF_EPS, n_queries=100).run(x, y)
    assert result.robust[star > 0].all()  # no attack can break these
    assert not result.robust[star < -0.5].any()  # the clearly breakable ones it finds


class _Overflow(torch.autograd.Function):
    """Identity whose backward overflows: the exploding exact gradients of the reweighting."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * 1e38 * 1e38  # +-inf where the gradient is non-zero


class Overflow(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Overflow.apply(x)


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_pgd_survives_infinite_gradients_and_reports_them(norm):
    model, x, y, w, c = linear_problem()
    model = nn.Sequential(Overflow(), *model)
    eps = LINF_EPS if norm == "Linf" else L2_EPS
    result = PGD(model, eps=eps, norm=norm, steps=10, random_start=False).run(x, y)
    assert torch.isfinite(result.x_adv).all()
    stats = result.info["grad_stats"]
    assert stats["nonfinite"] == stats["evaluations"] == 10 * x.shape[0]
    after = true_margin(result.x_adv, w, c)
    assert (after < true_margin(x, w, c) - 0.1).all()  # the attack still made progress
    if norm == "Linf":
        # Signs survive overflow, and Linf steps need nothing else: the optimum is exact.
        star = optimum(x, w, c, norm)
        assert torch.allclose(after[star > 0], star[star > 0], atol=1e-5)
