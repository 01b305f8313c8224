"""PGD under an Linf or L2 budget (Madry et al., ICLR 2018)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor, nn

from .ascent import EVALUATION, Ball, ascend
from .base import Attack, EpsLike, parse_eps
from .losses import get_loss, is_fooled
from .registry import register_attack

# Madry et al.'s rule: a step of 2.5 * eps / steps lets the iterate travel 2.5 eps in total,
# enough to cross the ball from any start point.
STEP_FACTOR = Fraction(5, 2)


@register_attack
class PGD(Attack):
    """Projected Gradient Descent (Madry et al., "Towards Deep Learning Models Resistant to
    Adversarial Attacks", ICLR 2018), ``norm="Linf"`` (signed steps) or ``"L2"``
    (normalized-gradient steps), each followed by projection onto the ball and the [0, 1] box.

    Defaults: ``steps=20``, ``alpha = 2.5 * eps / steps`` (Madry et al.; 1/255 at 8/255 and
    20 steps; the common CIFAR setting "2/255 at 8/255 with 20 steps" is ``alpha="2/255"``),
    ``restarts=1`` (total number of runs), ``random_start=True`` (uniform in the Linf ball,
    uniform in the L2 ball), ``loss="ce"``; ``loss="margin"`` is the Carlini-Wagner margin,
    i.e. the "C&W" column of robustness tables. Restarts after the first always start at a
    random point. Randomness comes from a private generator seeded with ``seed``, so results
    are reproducible and the global RNG is untouched.

    Every iterate (including the start and the last) is scored and each example keeps its
    best: the first iterate that fools the model, otherwise the one with the highest loss,
    across iterations and restarts. More restarts are therefore never worse per example.

    In L2 a random start leaves a component orthogonal to the ascent direction that the
    projection shrinks only geometrically (by about e^-2.5 over the whole run at the default
    step): even on a linear model PGD-10 from a random start stops short of the optimum.
    Use restarts, more steps or ``random_start=False`` where that matters.
    """

    name = "pgd"
    norms = ("Linf", "L2")
    suite_name = "pgd"
    follows_model_gradients = True
    example_settings = ({"steps": 3, "restarts": 2}, {"steps": 3, "loss": "margin"})

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: EpsLike,
        norm: str = "Linf",
        steps: int = 20,
        alpha: EpsLike | None = None,
        restarts: int = 1,
        random_start: bool = True,
        loss: str = "ce",
        seed: int = 0,
        w_grad: str | None = None,
    ) -> None:
        super().__init__(model, eps=eps, norm=norm, w_grad=w_grad)
        if steps < 1 or restarts < 1:
            raise ValueError(f"PGD needs steps >= 1 and restarts >= 1, got {steps} and {restarts}")
        self.steps = int(steps)
        self.restarts = int(restarts)
        self.random_start = bool(random_start)
        self.loss = loss
        self.seed = int(seed)
        self._loss_fn = get_loss(loss)
        if alpha is None:
            self.alpha_fraction = STEP_FACTOR * self.eps_fraction / self.steps
            self.alpha = float(self.alpha_fraction)
        else:
            self.alpha_fraction, self.alpha = parse_eps(alpha)

    def _settings(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "alpha": self.alpha,
            "alpha_exact": str(self.alpha_fraction),
            "restarts": self.restarts,
            "random_start": self.random_start,
            "loss": self.loss,
            "seed": self.seed,
        }

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        gen = torch.Generator(device=x.device).manual_seed(self.seed)
        best = x.clone()
        best_loss = torch.full((x.shape[0],), float("-inf"), device=x.device)
        best_fooled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

        def visit(x_adv: Tensor, last: bool) -> Tensor | None:
            # every iterate, the start and the last included, is scored; each example keeps its best
            grad = None
            if last:  # no step follows: no gradient needed
                with torch.no_grad():
                    logits = self.model(x_adv)
                    loss = self._loss_fn(logits, y)
            else:
                logits, loss, grad = self._loss_and_grad(x_adv, y, self._loss_fn)
            _keep_best(best, best_loss, best_fooled, x_adv, loss, is_fooled(logits, y))
            return grad

        for restart in range(self.restarts):
            start = self._start(x, gen) if (self.random_start or restart > 0) else x.clone()
            ascend(_ball(self), x, start, alpha=self.alpha, steps=self.steps, visit=visit)
        return best, {"loss": best_loss}

    def _start(self, x: Tensor, gen: torch.Generator) -> Tensor:
        return _ball(self).uniform_start(x, gen)

    def _step(self, x: Tensor, x_adv: Tensor, grad: Tensor) -> Tensor:
        return _ball(self).step(x, x_adv, grad, self.alpha)


def _ball(attack: PGD) -> Ball:
    """The attack's threat model with evaluation's numerics (see :mod:`edlnet.attacks.ascent`)."""
    return Ball(attack.norm, attack.eps, EVALUATION)


def _keep_best(
    best: Tensor, best_loss: Tensor, best_fooled: Tensor, x_adv: Tensor, loss: Tensor, fooled: Tensor
) -> None:
    """In place: take ``x_adv`` where it is the first to fool, or has a higher loss while
    nothing has fooled yet. A NaN loss never wins."""
    loss = torch.nan_to_num(loss, nan=-math.inf)
    take = ~best_fooled & (fooled | (loss > best_loss))
    best[take] = x_adv[take]
    best_loss[take] = loss[take]
    best_fooled |= take & fooled
