"""Inner maximization for adversarial training: ℓ∞/ℓ2 PGD on an arbitrary loss, last iterate.

Evaluation uses :mod:`edlnet.attacks` (fp32, eval mode, best iterate, restarts). Training
needs something different: any loss (cross-entropy for PGD-AT/MART, KL for TRADES/HAT), the
model in a chosen and recorded mode (``attack_mode``), the run's precision, a seeded
generator, and the last iterate as in the original recipes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from ..attacks.base import input_gradients_only
from ..layers.gradient_policy import w_grad_policy


@contextlib.contextmanager
def model_mode(model: nn.Module, training: bool):
    was = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was)


def _l2_normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.dim() - 1)))


def _project(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "Linf":
        return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    delta = x_adv - x
    scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    return (x + delta * scale.view(-1, *([1] * (x.dim() - 1)))).clamp(0, 1)


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
    noise_shape = x.shape
    if start == "uniform" and norm == "L2":
        delta = (
            _l2_normalize(torch.randn(noise_shape, generator=generator, device="cpu").to(x.device))
            * eps
            * torch.rand(x.shape[0], generator=generator).to(x.device).view(-1, *([1] * (x.dim() - 1)))
        )
    elif start == "uniform":
        delta = (torch.rand(noise_shape, generator=generator, device="cpu").to(x.device) * 2 - 1) * eps
    elif start == "normal":
        delta = 0.001 * torch.randn(noise_shape, generator=generator, device="cpu").to(x.device)
    else:
        raise ValueError(f"start must be 'uniform' or 'normal', got {start!r}")
    x_adv = (x + delta).clamp(0, 1).detach()
    ctx = autocast or contextlib.nullcontext()
    # only the input gradient is needed: frozen parameters spare the fused dictionary layers
    # their weight gradients (edlnet.attacks.base.input_gradients_only)
    with model_mode(model, training_mode), w_grad_policy(model, w_grad), input_gradients_only(model):
        for _ in range(steps):
            x_adv.requires_grad_(True)
            with ctx:
                loss = loss_fn(model(x_adv)).float()
            (grad,) = torch.autograd.grad(loss, x_adv)
            step = grad.sign() if norm == "Linf" else _l2_normalize(grad)
            x_adv = _project(x, x_adv.detach() + alpha * step, eps, norm).detach()
    return x_adv
