"""Square Attack, black-box, through the reference implementation (Andriushchenko et al. 2020)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from . import _reference
from .base import Attack, EpsLike
from .registry import register_attack

SQUARE_LOSSES = ("margin", "ce")


@register_attack
class Square(Attack):
    """Square Attack (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a
    query-efficient black-box adversarial attack via random search", ECCV 2020), run by the
    reference code shipped with AutoAttack (``pyautoattack``, a dependency of edlnet).

    Score-based and gradient-free, so it is the suite's check against gradient masking: it
    must not beat the white-box attacks. The ``w_grad`` policy does not affect it (no
    backward pass) and is accepted for a uniform interface.

    Defaults as in the reference: ``n_queries=5000``, ``p_init=0.8``, ``n_restarts=1``,
    ``loss="margin"``, ``rescale_schedule=True`` (AutoAttack itself runs it with False);
    ``seed=0``. Norms: Linf (default), L2, L1. Inputs must be image batches (N, C, H, W).
    The caller's RNG stream is preserved although the reference reseeds torch.
    """

    name = "square"
    norms = ("Linf", "L2", "L1")
    suite_name = "square"
    follows_model_gradients = False
    example_settings = ({"n_queries": 10},)

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: EpsLike,
        norm: str = "Linf",
        n_queries: int = 5000,
        n_restarts: int = 1,
        p_init: float = 0.8,
        loss: str = "margin",
        seed: int = 0,
        rescale_schedule: bool = True,
        w_grad: str | None = None,
    ) -> None:
        super().__init__(model, eps=eps, norm=norm, w_grad=w_grad)
        if loss not in SQUARE_LOSSES:
            raise ValueError(f"unknown Square loss {loss!r}; use one of {SQUARE_LOSSES}")
        self.n_queries = int(n_queries)
        self.n_restarts = int(n_restarts)
        self.p_init = float(p_init)
        self.loss = loss
        self.seed = int(seed)
        self.rescale_schedule = bool(rescale_schedule)

    def _settings(self) -> dict[str, Any]:
        return {
            "n_queries": self.n_queries,
            "n_restarts": self.n_restarts,
            "p_init": self.p_init,
            "loss": self.loss,
            "seed": self.seed,
            "rescale_schedule": self.rescale_schedule,
            "reference_version": _reference.version(),
        }

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        if x.dim() != 4:
            raise ValueError(f"Square needs image batches (N, C, H, W), got shape {tuple(x.shape)}")
        reference = _reference.load("square")
        attack = reference.SquareAttack(
            self.model,
            norm=self.norm,
            n_queries=self.n_queries,
            eps=self.eps,
            p_init=self.p_init,
            n_restarts=self.n_restarts,
            seed=self.seed,
            verbose=False,
            targeted=False,
            loss=self.loss,
            resc_schedule=self.rescale_schedule,
            device=x.device,
        )
        with torch.no_grad(), _reference.preserve_rng(x.device):
            x_adv = attack.perturb(x, y)
        return x_adv, {}
