"""Inner maximization for adversarial training: ℓ∞ PGD on an arbitrary loss, last iterate.

Evaluation uses :mod:`edlnet.attacks` (fp32, eval mode, best iterate, restarts). Training
needs something different: any loss (cross-entropy for PGD-AT/MART, KL for TRADES/HAT), the
model in a chosen and recorded mode (``attack_mode``), the run's precision, a seeded
generator, and the last iterate as in the original recipes.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from ..layers.gradient_policy import w_grad_policy


@contextlib.contextmanager
def model_mode(model: nn.Module, training: bool):
    was = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was)


def pgd_linf(model: nn.Module, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor],
             eps: float, alpha: float, steps: int, *, start: str = "uniform",
             generator: torch.Generator | None = None, training_mode: bool = False,
             w_grad: str | None = None, autocast: contextlib.AbstractContextManager | None = None
             ) -> torch.Tensor:
    """Maximize ``loss_fn(model(x_adv))`` (summed over the batch) over the ℓ∞ ball ∩ [0, 1].

    ``start``: ``"uniform"`` in the ball (Madry et al.) or ``"normal"`` (x + 0.001·N(0, 1),
    TRADES). Returns the detached last iterate. Parameter gradients are not touched.
    """
    noise_shape = x.shape
    if start == "uniform":
        delta = (torch.rand(noise_shape, generator=generator, device="cpu").to(x.device) * 2 - 1) * eps
    elif start == "normal":
        delta = 0.001 * torch.randn(noise_shape, generator=generator, device="cpu").to(x.device)
    else:
        raise ValueError(f"start must be 'uniform' or 'normal', got {start!r}")
    x_adv = (x + delta).clamp(0, 1).detach()
    ctx = autocast or contextlib.nullcontext()
    with model_mode(model, training_mode), w_grad_policy(model, w_grad):
        for _ in range(steps):
            x_adv.requires_grad_(True)
            with ctx:
                loss = loss_fn(model(x_adv)).float()
            grad, = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach() + alpha * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1).detach()
    return x_adv
