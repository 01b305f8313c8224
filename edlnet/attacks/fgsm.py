"""FGSM: one signed-gradient step (Goodfellow, Shlens & Szegedy, ICLR 2015, arXiv 2014)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .base import Attack, EpsLike, normalize_l2
from .losses import get_loss
from .registry import register_attack


@register_attack
class FGSM(Attack):
    """Fast Gradient Sign Method (Goodfellow et al., "Explaining and Harnessing Adversarial
    Examples", 2014).

    ``x_adv = clip_[0,1](x + eps * sign(grad_x loss))`` for ``norm="Linf"`` (the paper's
    attack); ``norm="L2"`` takes the step ``eps * grad / ||grad||_2`` instead (the
    fast gradient method). Defaults: ``norm="Linf"``, ``loss="ce"``; no random start.
    On a linear model each step is the exact optimum of its norm ball.
    """

    name = "fgsm"
    norms = ("Linf", "L2")
    suite_name = "fgsm"
    follows_model_gradients = True

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: EpsLike,
        norm: str = "Linf",
        loss: str = "ce",
        w_grad: str | None = None,
    ) -> None:
        super().__init__(model, eps=eps, norm=norm, w_grad=w_grad)
        self.loss = loss
        self._loss_fn = get_loss(loss)

    def _settings(self) -> dict[str, Any]:
        return {"loss": self.loss}

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        _, _, grad = self._loss_and_grad(x, y, self._loss_fn)
        step = grad.sign() if self.norm == "Linf" else normalize_l2(grad)
        return (x + self.eps * step).clamp(0.0, 1.0), {}
