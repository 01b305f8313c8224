"""``hat``: Helper-based Adversarial Training (Rade & Moosavi-Dezfooli, ICLR 2022).

TRADES (β = 3) + γ·CE(f(x + h·(x' − x)), ŷ): helper examples pushed h = 2 times as far as
TRADES' x', labelled ŷ = argmax of a naturally trained model at x'; γ = 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import register_objective
from .base import Context, Objective
from .kl import kl_adversarial, kl_per_example


@dataclass(frozen=True)
class HatOptions:
    gamma: float = 0.5  # weight of the helper loss
    beta: float = 3.0  # TRADES weight inside HAT
    h: float = 2.0  # helper examples x + h·(x_adv − x)
    std_model: str | None = None  # checkpoint of a naturally trained model (the helper labels)


@register_objective
class Hat(Objective):
    """TRADES plus cross-entropy on helper examples labelled by a naturally trained model."""

    name = "hat"
    Options = HatOptions
    helper_model = "std_model"
    helper_model_is = "a naturally trained model, e.g. a run with objective=standard"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context):
        if ctx.helper_model is None:
            raise ValueError(
                "objective hat needs its naturally trained model (objective_options.std_model) "
                "as ctx.helper_model"
            )
        o = self.options
        x_adv = kl_adversarial(model, x, ctx)
        x_help = (x + o.h * (x_adv - x)).clamp(0, 1)
        with torch.no_grad():
            y_help = ctx.helper_model(x_adv).argmax(1)
        with ctx.autocast():
            logits, logits_adv, logits_help = model(torch.cat([x, x_adv, x_help])).chunk(3)
        p = F.softmax(logits.float(), 1)
        loss = (
            F.cross_entropy(logits.float(), y)
            + o.beta * kl_per_example(logits_adv, p).mean()
            + o.gamma * F.cross_entropy(logits_help.float(), y_help)
        )
        return loss, logits_adv
