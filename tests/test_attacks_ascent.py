"""The one PGD core (edlnet.attacks.ascent) that evaluation's PGD and training's inner
maximization share: both numerics stay in the ball ∩ [0, 1], the evaluation numerics are the
library's projection and normalization, and the iteration visits every iterate once."""

import pytest
import torch

from edlnet.attacks import PGD
from edlnet.attacks.ascent import EVALUATION, TRAINING, Ball, ascend, normal_start
from edlnet.attacks.base import normalize_l2, perturbation_norm, project

NUMERICS = {"evaluation": EVALUATION, "training": TRAINING}
BUDGETS = [("Linf", 8 / 255), ("L2", 0.5)]


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(6, 3, 8, 8, generator=g), torch.randn(6, 3, 8, 8, generator=g)


@pytest.mark.parametrize("numerics", NUMERICS)
@pytest.mark.parametrize("norm,eps", BUDGETS)
def test_start_and_steps_stay_in_the_ball_and_the_box(numerics, norm, eps):
    x, grad = _batch()
    ball = Ball(norm, eps, NUMERICS[numerics])
    x_adv = ball.uniform_start(x, torch.Generator().manual_seed(1))
    for _ in range(3):
        assert (perturbation_norm(x_adv - x, norm) <= eps + 1e-6).all()
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        x_adv = ball.step(x, x_adv, grad, eps / 2)
    assert not x_adv.requires_grad


@pytest.mark.parametrize("norm,eps", BUDGETS)
def test_evaluation_numerics_are_the_library_projection_and_normalization(norm, eps):
    x, grad = _batch()
    ball = Ball(norm, eps, EVALUATION)
    far = x + 3 * eps * grad.sign()
    assert torch.equal(ball.project(x, far), project(x, far, eps, norm))
    step = grad.sign() if norm == "Linf" else normalize_l2(grad)
    assert torch.equal(ball.step(x, x, grad, 0.1), project(x, x + 0.1 * step, eps, norm))


def test_training_l2_start_has_a_uniform_radius_and_evaluation_a_uniform_ball():
    """The two recipes differ on purpose (kept bitwise for recorded results): same draws, radius
    ε·u for training, ε·u^(1/d) for evaluation."""
    x = torch.full((2000, 3, 2, 2), 0.5)
    radii = {}
    for name, numerics in NUMERICS.items():
        delta = Ball("L2", 0.1, numerics).uniform_start(x, torch.Generator().manual_seed(0)) - x
        radii[name] = delta.flatten(1).norm(dim=1)
    d = x[0].numel()
    assert radii["training"].mean() == pytest.approx(0.05, rel=0.05)
    assert radii["evaluation"].mean() == pytest.approx(0.1 * d / (d + 1), rel=0.02)


def test_random_numbers_come_from_the_generator_only():
    x, _ = _batch()
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = Ball("Linf", 0.1, TRAINING).uniform_start(x, torch.Generator().manual_seed(3))
    b = Ball("Linf", 0.1, TRAINING).uniform_start(x, torch.Generator().manual_seed(3))
    n = normal_start(x, 0.001, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
    assert (n - x).abs().max() < 0.01 and n.min() >= 0 and n.max() <= 1


def test_ascend_visits_every_iterate_and_returns_the_last():
    x, grad = _batch()
    ball = Ball("Linf", 0.1, TRAINING)
    seen = []

    def visit(x_adv, last):
        seen.append((x_adv.clone(), last))
        return None if last else grad

    out = ascend(ball, x, x, alpha=0.01, steps=4, visit=visit)
    assert [last for _, last in seen] == [False] * 4 + [True]
    assert torch.equal(seen[0][0], x) and torch.equal(seen[-1][0], out)
    assert torch.equal(out, ball.step(x, seen[-2][0], grad, 0.01))


def test_pgd_scores_the_start_and_the_last_iterate():
    """Evaluation's PGD on the core: steps + 1 scored iterates per restart (every iterate, the
    start and the last included, can be the one an example keeps)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10, bias=False))
    x = torch.full((4, 3, 4, 4), 0.5)
    y = torch.zeros(4, dtype=torch.long)
    calls = []
    forward = model.forward
    model.forward = lambda inp: calls.append(1) or forward(inp)
    PGD(model, eps="8/255", steps=3, restarts=2, seed=0).run(x, y)
    # 2 restarts × (3 gradient passes + 1 scoring pass), then one judging pass
    assert len(calls) == 2 * 4 + 1
