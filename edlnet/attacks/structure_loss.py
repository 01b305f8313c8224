"""PGD with a loss that uses the dictionary layer's structure: saturate its reweighting.

A robust or elastic layer reweights each pixel of its residual r = x − A*(z) by
w = 1/(2(|r| + ε)) ≤ 1/(2ε): pixels it reconstructs well (|r| ≲ ε, "inliers") get the full
weight, pixels with |r| ≫ ε ("outliers") are down-weighted, and their ℓ1 pull on the code
saturates at (1−β)/2·sign(r) whatever the size of r. That contrast between trusted and ignored
pixels is what makes the layer robust to sparse corruptions. A dense perturbation that moves
every pixel out of the trusted region removes it: nothing is trusted any more, the
reweighted correction becomes a bounded sign term and the code of the perturbed input stays
close to the plain convolution z₀ = A(x + δ), which is what a standard CNN would see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from edlnet.layers.conv_ops import dict_adjoint
from edlnet.layers.dict_conv import DictConv2d, dict_layers
from edlnet.models.capture import capture_layers

from .base import EpsLike, NotApplicable, attack_mode
from .pgd import PGD
from .registry import register_attack

LAYER_CHOICES = ("first", "all")


def layer_residual(layer: DictConv2d, x: Tensor, out: Tensor) -> Tensor:
    """The residual r = x − Â*(ẑ) of the final code of ``layer`` for input ``x`` and output
    ``out`` (as returned by its forward), on the dictionary RISTA ran on.

    With ``normalize=True`` the layer solves on Â = A/‖A‖₂ and returns ‖A‖₂·ẑ (plus bias), so
    ẑ = (out − b)/‖A‖₂; the norm is the ``dict_norm`` the forward just used (eval mode). The sum
    of |r| equals the last ``residual_l1`` of ``layer.solve(x, return_terms=True)``.
    """
    z = out if layer.bias is None else out - layer.bias.view(1, -1, 1, 1)
    weight = layer.weight
    if layer.normalize:
        sigma = layer.dict_norm
        weight, z = weight / sigma, z / sigma
    recon = dict_adjoint(
        z,
        weight,
        x.shape[-2:],
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        groups=layer.groups,
    )
    return x - recon


def saturation(layer: DictConv2d, x: Tensor, out: Tensor) -> Tensor:
    """Per-example mean over pixels of |r|/(|r| + ε) = 1 − w/w_max, in [0, 1): 0 where the
    layer trusts a pixel fully (w = 1/(2ε)), → 1 where the reweighting has saturated."""
    r = layer_residual(layer, x, out).abs()
    return (r / (r + layer.eps)).flatten(1).mean(dim=1)


def reweighting_layers(model: nn.Module) -> list[tuple[str, DictConv2d]]:
    """Dictionary layers that actually reweight: robust or elastic mode with ``n_steps >= 1``."""
    return [(n, m) for n, m in dict_layers(model) if m.mode != "vanilla" and m.n_steps > 0]


@register_attack
class ResidualPGD(PGD):
    """PGD on cross-entropy plus a reweighting-saturation term (a structure-aware loss in the
    spirit of adaptive attacks, Tramèr, Carlini, Brendel & Madry, "On Adaptive Attacks to
    Adversarial Example Defenses", NeurIPS 2020: design the loss around the defense's
    mechanism; here the ℓ1 reweighting of Elastic/Robust DL, Eq. 12 and Lemma 4.1 of the Elastic
    DL paper). It ascends

        CE(true logits) + kappa · mean over chosen layers of  mean_pixels |r|/(|r| + ε)

    with r = x_l − Â*(z_l) the residual of the layer's final code (see :func:`layer_residual`)
    and ε the layer's own reweighting ε. |r|/(|r| + ε) = 1 − w/w_max measures how far the
    reweighting has moved a pixel out of the trusted region (module docstring).

    Why this variant rather than mean|r|/ε: the latter is unbounded and keeps rewarding pixels
    that are already saturated (their weight can hardly fall further), so at kappa ~ 1 it
    swamps CE; the saturation term is bounded by 1, its gradient ε/(|r| + ε)² is largest on the
    pixels still trusted, which are the ones the attack has to move, and it vanishes where
    pushing further changes nothing.

    Why CE-only gradient attacks may miss this direction: the CE gradient through the layer is
    local. With exact w it is dominated by the near-zero residuals, where ∂w/∂r reaches
    1/(2ε)² (and can overflow); with detached w it ignores the reweighting altogether. Neither
    asks for the coordinated, dense move of many pixels out of the trusted region that lowers
    the layer's robustness before it changes the logits much.

    The residual term only steers the ascent: iterates are ranked by CE on the true logits
    (best kept per example, first fooling iterate wins, as in :class:`PGD`) and robustness is
    judged on the true logits only. ``layers="first"`` uses the first reweighting layer
    (robust/elastic with ``n_steps >= 1``), ``"all"`` every one; the residuals are captured by
    forward hooks (:func:`edlnet.models.capture_layers`), so the model runs once per step.

    ``norm="Linf"`` (default) or ``"L2"``; defaults ``steps=20``, ``alpha = 2.5·eps/steps``,
    ``restarts=1``, ``random_start=True``, ``seed=0``, ``kappa=1.0``, ``layers="first"``.
    ``run`` reports ``info["residual_term_clean"]`` and ``info["residual_term"]`` (the
    per-example saturation term at x and at the returned point).
    """

    name = "residual_pgd"
    norms = ("Linf", "L2")
    suite_name = "residual-pgd"
    follows_model_gradients = True
    example_settings = ({"steps": 3}, {"steps": 3, "layers": "all"})

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
        seed: int = 0,
        kappa: float = 1.0,
        layers: str = "first",
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
            loss="ce",
            seed=seed,
            w_grad=w_grad,
        )
        if layers not in LAYER_CHOICES:
            raise ValueError(f"layers must be one of {LAYER_CHOICES}, got {layers!r}")
        found = reweighting_layers(model)
        if not found:
            raise NotApplicable(
                "ResidualPGD needs a robust or elastic DictConv2d with n_steps >= 1; the model has none"
            )
        self.kappa = float(kappa)
        self.layers = layers
        self.layer_names = [n for n, _ in (found[:1] if layers == "first" else found)]

    def _settings(self) -> dict[str, Any]:
        return {
            **super()._settings(),
            "kappa": self.kappa,
            "layers": self.layers,
            "layer_names": list(self.layer_names),
        }

    def _forward_with_term(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Logits and the per-example saturation term from one forward (hooks keep the graph)."""
        modules = dict(self.model.named_modules())
        with capture_layers(self.model, detach=False) as records:
            logits = self.model(x)
        terms = [saturation(modules[n], records[n]["input"], records[n]["output"]) for n in self.layer_names]
        return logits, torch.stack(terms).mean(dim=0)

    def residual_term(self, x: Tensor) -> Tensor:
        """The per-example saturation term at ``x`` (eval mode, no gradient; modes restored)."""
        with attack_mode(self.model, None, x.device.type), torch.no_grad():
            return self._forward_with_term(x.detach().float())[1]

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        best, info = super()._perturb(x, y)
        with torch.no_grad():
            info["residual_term_clean"] = self._forward_with_term(x)[1]
            info["residual_term"] = self._forward_with_term(best)[1]
        return best, info

    def _loss_and_grad(
        self, x_adv: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Logits and CE (for the selection) and the gradient of CE + kappa·term (the step)."""
        x_adv = x_adv.detach().requires_grad_(True)
        logits, term = self._forward_with_term(x_adv)
        loss = loss_fn(logits, y)
        (grad,) = torch.autograd.grad((loss + self.kappa * term).sum(), x_adv, allow_unused=True)
        grad = torch.zeros_like(x_adv) if grad is None else grad
        return logits.detach(), loss.detach(), self._sanitize_grad(grad)


__all__ = ["ResidualPGD", "layer_residual", "reweighting_layers", "saturation"]
