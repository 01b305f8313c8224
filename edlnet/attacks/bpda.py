"""BPDA-style surrogate-gradient PGD: forward through the true model, backward through a twin.

A dictionary layer's backward pass (unrolled RISTA, the reweighting w = 1/(2(|r| + ε))) can
explode, vanish or point the wrong way while its forward pass is perfectly well behaved. The
Backward Pass Differentiable Approximation keeps the forward pass honest and replaces only the
backward pass by that of a smooth approximation with the same weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from edlnet.layers.dict_conv import dict_layers

from .base import EpsLike, attack_mode
from .pgd import PGD
from .registry import register_attack

TWINS = ("conv", "smooth", "vanilla")


def make_twin(model: nn.Module, twin: str = "conv", smooth_eps: float = 1.0) -> nn.Module:
    """A deep copy of ``model`` (same weights, nothing mutable shared) whose dictionary layers
    are reconfigured into a smooth approximation of themselves:

    * ``"conv"``: ``n_steps=0``, so each layer is exactly its convolution z₀ = A(x);
    * ``"smooth"``: the reweighting ε replaced by ``smooth_eps``, so w = 1/(2(|r| + ε)) and its
      derivative (up to 1/(2ε)²) stay small near zero residuals. With ``step="majorize"`` the
      layer's own rule recomputes η for the new ε (still a descent step for the smoothed
      problem);
    * ``"vanilla"``: every layer in vanilla mode (β = 1, plain ISTA, no reweighting).

    The copy is in eval mode with its parameters frozen (only input gradients are needed). It is
    a snapshot: later changes to ``model`` (training, ``configure``, ``.to(device)``) do not
    reach it. A model without dictionary layers gives a plain copy, equal to the model.
    """
    if twin not in TWINS:
        raise ValueError(f"unknown twin {twin!r}; use one of {TWINS}")
    if twin == "smooth" and not smooth_eps > 0:
        raise ValueError(f"smooth_eps must be > 0, got {smooth_eps}")
    clone = copy.deepcopy(model)
    for _, layer in dict_layers(clone):
        if twin == "conv":
            layer.configure(n_steps=0)
        elif twin == "smooth":
            layer.configure(eps=float(smooth_eps))
        else:
            layer.set_mode("vanilla")
    clone.requires_grad_(False)
    return clone.eval()


@register_attack
class SurrogatePGD(PGD):
    """PGD with BPDA-style surrogate gradients (Athalye, Carlini & Wagner, "Obfuscated Gradients
    Give a False Sense of Security: Circumventing Defenses to Adversarial Examples", ICML 2018,
    Sec. 4.1): the forward pass is the TRUE model, the backward pass goes through a twin with the
    same weights whose dictionary layers are smooth (see :func:`make_twin`: ``twin="conv"``,
    ``"smooth"`` or ``"vanilla"``).

    Each step takes g = ∂L/∂logits at the true model's logits and back-propagates it through the
    twin: ∇ₓ ≈ J_twin(x)ᵀ g. This is the straight-through combination
    ``logits = twin_logits + (true_logits − twin_logits).detach()`` written as a
    vector-Jacobian product, so the loss value is exactly the true model's (no round-off from
    adding and subtracting). Everything that is judged — the loss and "fooled" of the
    best-iterate selection (as in :class:`PGD`, every iterate scored, best kept per example) and
    the final ``robust`` — uses the true model only.

    ``norm="Linf"`` (default) or ``"L2"``; defaults as :class:`PGD`: ``steps=20``,
    ``alpha = 2.5·eps/steps``, ``restarts=1``, ``random_start=True``, ``loss="ce"``, ``seed=0``;
    ``twin="conv"``, ``smooth_eps=1.0`` (used by ``twin="smooth"`` only). ``w_grad`` is applied
    to both the model and the twin (it matters for the ``"smooth"`` twin's backward).

    The twin is built once, in the constructor, with ``copy.deepcopy``: it is kept in sync with
    the model only at construction, so build the attack after the model is trained and on its
    device. On a model without dictionary layers the twin equals the model and the attack gives
    exactly :class:`PGD`'s result.
    """

    name = "surrogate_pgd"
    norms = ("Linf", "L2")
    suite_name = "surrogate-pgd"
    follows_model_gradients = True
    example_settings = (
        {"twin": "conv", "steps": 3},
        {"twin": "smooth", "steps": 3},
        {"twin": "vanilla", "steps": 3},
    )

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: EpsLike,
        norm: str = "Linf",
        twin: str = "conv",
        steps: int = 20,
        alpha: EpsLike | None = None,
        restarts: int = 1,
        random_start: bool = True,
        loss: str = "ce",
        seed: int = 0,
        smooth_eps: float = 1.0,
        w_grad: str | None = None,
    ) -> None:
        super().__init__(
            model,
            eps=eps,
            norm=norm,
            steps=steps,
            alpha=alpha,
            restarts=restarts,
            random_start=random_start,
            loss=loss,
            seed=seed,
            w_grad=w_grad,
        )
        self.twin_kind = twin
        self.smooth_eps = float(smooth_eps)
        self.twin = make_twin(model, twin, self.smooth_eps)
        self.twinned_layers = len(dict_layers(self.twin))

    def _settings(self) -> dict[str, Any]:
        return {
            **super()._settings(),
            "twin": self.twin_kind,
            "smooth_eps": self.smooth_eps,
            "twinned_layers": self.twinned_layers,
        }

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        # The base class puts only self.model in attack mode; the twin needs the same
        # (eval, autocast off, w_grad policy), undone afterwards.
        with attack_mode(self.twin, self.w_grad, x.device.type):
            x_adv, info = super()._perturb(x, y)
        info["twin"] = self.twin_kind
        return x_adv, info

    def _loss_and_grad(
        self, x_adv: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """True logits and loss; gradient = twin's Jacobian applied to ∂loss/∂(true logits)."""
        x_adv = x_adv.detach()
        with torch.no_grad():
            logits = self.model(x_adv)
        leaf = logits.detach().requires_grad_(True)
        loss = loss_fn(leaf, y)
        (dlogits,) = torch.autograd.grad(loss.sum(), leaf)
        x_in = x_adv.requires_grad_(True)
        twin_logits = self.twin(x_in)
        (grad,) = torch.autograd.grad(twin_logits, x_in, grad_outputs=dlogits, allow_unused=True)
        grad = torch.zeros_like(x_in) if grad is None else grad
        return logits, loss.detach(), self._sanitize_grad(grad)


__all__ = ["TWINS", "SurrogatePGD", "make_twin"]
