"""Projected gradient ascent on the input: the one PGD core that evaluation
(:class:`edlnet.attacks.PGD` and its subclasses) and adversarial training
(:mod:`edlnet.train.adversary`) share.

The core owns the geometry: a start point (uniform in the ball, or TRADES' small Gaussian), the
step (signed in ℓ∞, normalized gradient in ℓ2) and the projection onto the ball ∩ [0, 1], and the
iteration that strings them together. The callers own everything else: evaluation runs in fp32 in
eval mode, scores every iterate and keeps each example's best across restarts; training runs in
the run's precision and chosen mode, on any loss, and keeps the last iterate.

Where the two computed the same quantity in different floating-point ways, both ways are kept as
an explicit :class:`Numerics` choice (``EVALUATION`` and ``TRAINING``): each is baked bitwise into
results already recorded (evaluation records; trained checkpoints and the bitwise resume and
fork guarantees of the reproduction study), so unifying them would silently change those.

Random numbers are drawn on the generator's device and then moved to the input's: evaluation
seeds a generator on the input's device (so the move does nothing), training a CPU generator (so
a run's noise does not depend on the device it runs on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .base import normalize_l2, project

# The training recipe's ℓ2 floor: below it a gradient or perturbation counts as zero.
_TRAINING_L2_FLOOR = 1e-12


@dataclass(frozen=True)
class Numerics:
    """How the ℓ2 direction, the ℓ2 random start and the projection are computed.

    ``l2_direction``: ``"stable"`` divides by the largest entry before the norm
    (:func:`edlnet.attacks.base.normalize_l2`: finite even for gradients near float max, which
    evaluation's sanitizing produces from infinities); ``"plain"`` divides by the norm floored at
    1e-12, as the training recipe always did.

    ``l2_start``: ``"uniform_ball"`` draws the radius as ε·u^(1/d), uniform in the ball (evaluation);
    ``"uniform_radius"`` as ε·u, a uniform radius that puts more starts near the centre (training's
    recipe, kept so that trained runs stay reproducible).

    ``projection``: ``"clamp_perturbation"`` clamps δ = x_adv − x to the ball and returns x + δ
    (:func:`edlnet.attacks.base.project`, the library's projection); ``"clamp_point"`` clamps the
    point itself between x − ε and x + ε in ℓ∞ and rescales δ by min(1, ε/‖δ‖) in ℓ2 (training).
    Both end with the [0, 1] box clamp.
    """

    l2_direction: Literal["stable", "plain"]
    l2_start: Literal["uniform_ball", "uniform_radius"]
    projection: Literal["clamp_perturbation", "clamp_point"]


EVALUATION = Numerics(l2_direction="stable", l2_start="uniform_ball", projection="clamp_perturbation")
TRAINING = Numerics(l2_direction="plain", l2_start="uniform_radius", projection="clamp_point")


def _per_example(v: Tensor, like: Tensor) -> Tensor:
    """``v`` of shape (N,) viewed to broadcast over the examples of ``like``."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def _plain_unit_l2(v: Tensor) -> Tensor:
    return v / _per_example(v.flatten(1).norm(dim=1).clamp_min(_TRAINING_L2_FLOOR), v)


def _draw(sample: Callable[..., Tensor], shape, generator: torch.Generator | None, device) -> Tensor:
    """``sample(shape)`` (torch.rand or torch.randn) drawn where the generator lives, moved to
    ``device`` (see the module docstring)."""
    where = generator.device if generator is not None else torch.device("cpu")
    return sample(shape, generator=generator, device=where).to(device)


def normal_start(x: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    """``x + sigma·N(0, 1)`` in [0, 1]: TRADES' start (Zhang et al. 2019, σ = 0.001)."""
    delta = sigma * _draw(torch.randn, x.shape, generator, x.device)
    return (x + delta).clamp(0, 1)


@dataclass(frozen=True)
class Ball:
    """The threat model: the ``norm`` ball of radius ``eps`` (pixel units) around each example,
    intersected with the [0, 1] box, computed with ``numerics``."""

    norm: Literal["Linf", "L2"]
    eps: float
    numerics: Numerics

    def direction(self, grad: Tensor) -> Tensor:
        """The ascent direction of a gradient: its sign in ℓ∞, its unit-ℓ2 direction in ℓ2."""
        if self.norm == "Linf":
            return grad.sign()
        if self.numerics.l2_direction == "stable":
            return normalize_l2(grad)
        return _plain_unit_l2(grad)

    def uniform_start(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """A random point of the ball around ``x`` (Madry et al.), clamped to [0, 1]."""
        if self.norm == "Linf":
            delta = (_draw(torch.rand, x.shape, generator, x.device) * 2 - 1) * self.eps
        else:
            noise = _draw(torch.randn, x.shape, generator, x.device)
            direction = (
                normalize_l2(noise) if self.numerics.l2_direction == "stable" else _plain_unit_l2(noise)
            )
            u = _draw(torch.rand, (x.shape[0],), generator, x.device)
            if self.numerics.l2_start == "uniform_ball":
                delta = direction * _per_example(self.eps * u.pow(1.0 / x[0].numel()), x)
            else:  # the training recipe's product order, kept bitwise
                delta = direction * self.eps * _per_example(u, x)
        return (x + delta).clamp(0.0, 1.0)

    def project(self, x: Tensor, x_adv: Tensor) -> Tensor:
        """``x_adv`` brought into the ball around ``x`` and into [0, 1]."""
        if self.numerics.projection == "clamp_perturbation":
            return project(x, x_adv, self.eps, self.norm)
        if self.norm == "Linf":
            return torch.min(torch.max(x_adv, x - self.eps), x + self.eps).clamp(0, 1)
        delta = x_adv - x
        size = delta.flatten(1).norm(dim=1).clamp_min(_TRAINING_L2_FLOOR)
        return (x + delta * _per_example((self.eps / size).clamp(max=1.0), x)).clamp(0, 1)

    def step(self, x: Tensor, x_adv: Tensor, grad: Tensor, alpha: float) -> Tensor:
        """One PGD step of size ``alpha`` along ``grad`` from ``x_adv``, projected; detached."""
        return self.project(x, x_adv.detach() + alpha * self.direction(grad)).detach()


# ``visit(x_adv, last)`` sees every iterate, the start and the last included, and returns the
# input gradient to step along (it may return None when ``last``: nothing steps from there).
Visit = Callable[[Tensor, bool], Tensor | None]


def ascend(ball: Ball, x: Tensor, start: Tensor, *, alpha: float, steps: int, visit: Visit) -> Tensor:
    """``steps`` projected gradient steps of size ``alpha`` from ``start``; returns the last
    iterate. What is computed at each iterate (loss, gradient, scoring) is ``visit``'s."""
    x_adv = start
    for _ in range(steps):
        grad = visit(x_adv, False)
        x_adv = ball.step(x, x_adv, grad, alpha)
    visit(x_adv, True)
    return x_adv


__all__ = ["EVALUATION", "TRAINING", "Ball", "Numerics", "Visit", "ascend", "normal_start"]
