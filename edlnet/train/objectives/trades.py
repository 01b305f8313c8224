"""``trades``: TRADES (Zhang et al., ICML 2019).

CE(f(x), y) + β·KL(f(x) ‖ f(x')), where x' maximizes the KL from x + 0.001·N(0, 1). β = 6 is the
paper's CIFAR-10 value (Table 4 of the EDLNet paper also uses 2 and 0.2).
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
class TradesOptions:
    beta: float = 6.0  # weight of the robustness (KL) term


@register_objective
class Trades(Objective):
    """Clean cross-entropy plus β times the KL to the adversarial prediction."""

    name = "trades"
    Options = TradesOptions

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context):
        x_adv = kl_adversarial(model, x, ctx)
        with ctx.autocast():
            logits, logits_adv = model(torch.cat([x, x_adv])).chunk(2)
        p = F.softmax(logits.float(), 1)
        loss = F.cross_entropy(logits.float(), y) + self.options.beta * kl_per_example(logits_adv, p).mean()
        return loss, logits_adv
