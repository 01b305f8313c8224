"""Inner maximization for adversarial training: ℓ∞/ℓ2 PGD on an arbitrary loss, last iterate.

The geometry (start, step, projection, iteration) is the library's one PGD core,
:mod:`edlnet.attacks.ascent`, with training's numerics. What differs from evaluation's
:class:`edlnet.attacks.PGD` (fp32, eval mode, best iterate, restarts) is kept here: any loss
(cross-entropy for PGD-AT/MART, KL for TRADES/HAT), the model in a chosen and recorded mode
(``attack_mode``) and reweighting-gradient policy (``attack_w_grad``), the run's precision, a
seeded generator, and the last iterate as in the original recipes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..attacks.ascent import TRAINING, Ball, ascend, normal_start
from ..attacks.base import input_gradients_only
from ..layers.gradient_policy import w_grad_policy

# TRADES' start: x + 0.001·N(0, 1) (Zhang et al. 2019)
TRADES_START_SIGMA = 0.001
STARTS = ("uniform", "normal")


@contextlib.contextmanager
def model_mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """``model.train(training)`` inside the block, the model's own mode after it."""
    was = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was)


def pgd_train(
    model: nn.Module,
    x: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    eps: float,
    alpha: float,
    steps: int,
    *,
    norm: str = "Linf",
    start: str = "uniform",
    generator: torch.Generator | None = None,
    training_mode: bool = False,
    w_grad: str | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> torch.Tensor:
    """Maximize ``loss_fn(model(x_adv))`` (summed over the batch) over the ``norm`` ball ∩ [0, 1]
    (ℓ∞: signed steps; ℓ2: normalized-gradient steps).

    ``start``: ``"uniform"`` in the ball (Madry et al.) or ``"normal"`` (x + 0.001·N(0, 1),
    TRADES). Returns the detached last iterate. Parameter gradients are not touched.
    """
    ball = Ball(norm, eps, TRAINING)
    if start == "uniform":
        x_adv = ball.uniform_start(x, generator)
    elif start == "normal":
        x_adv = normal_start(x, TRADES_START_SIGMA, generator)
    else:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    ctx = autocast or contextlib.nullcontext()

    def gradient(x_adv: torch.Tensor, last: bool) -> torch.Tensor | None:
        if last:  # the last iterate is the answer: nothing to compute there
            return None
        x_adv.requires_grad_(True)
        with ctx:
            loss = loss_fn(model(x_adv)).float()
        (grad,) = torch.autograd.grad(loss, x_adv)
        return grad

    # only the input gradient is needed: frozen parameters spare the fused dictionary layers
    # their weight gradients (edlnet.attacks.base.input_gradients_only)
    with model_mode(model, training_mode), w_grad_policy(model, w_grad), input_gradients_only(model):
        return ascend(ball, x, x_adv.detach(), alpha=alpha, steps=steps, visit=gradient)


@dataclass(frozen=True)
class Adversary:
    """The inner maximization's settings, from the config's threat model (``attack_norm``,
    ``eps``) and recipe (``attack_steps``, ``attack_alpha``, ``attack_mode``, ``attack_w_grad``)."""

    norm: str
    eps: float
    alpha: float
    steps: int
    training_mode: bool  # the model's mode during the maximization (attack_mode == "train")
    w_grad: str | None

    def maximize(
        self,
        model: nn.Module,
        x: torch.Tensor,
        loss_fn: Callable[[torch.Tensor], torch.Tensor],
        *,
        start: str,
        generator: torch.Generator,
        autocast: contextlib.AbstractContextManager,
    ) -> torch.Tensor:
        """The last PGD iterate maximizing ``loss_fn`` from ``start`` (see :func:`pgd_train`)."""
        return pgd_train(
            model,
            x,
            loss_fn,
            self.eps,
            self.alpha,
            self.steps,
            norm=self.norm,
            start=start,
            generator=generator,
            training_mode=self.training_mode,
            w_grad=self.w_grad,
            autocast=autocast,
        )
