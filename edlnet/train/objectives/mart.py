"""``mart``: MART (Wang et al., ICLR 2020).

BCE(f(x'), y) + β·KL(f(x) ‖ f(x'))·(1 − p_y(x)), x' from PGD on the cross-entropy; β = 6.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import register_objective
from .base import Context, Objective
from .kl import kl_per_example


@dataclass(frozen=True)
class MartOptions:
    beta: float = 6.0  # weight of the misclassification-aware KL term


@register_objective
class Mart(Objective):
    """Boosted cross-entropy on PGD examples plus a KL term weighted toward misclassified ones."""

    name = "mart"
    Options = MartOptions

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context):
        x_adv = ctx.maximize(model, x, lambda out: F.cross_entropy(out.float(), y, reduction="sum"))
        with ctx.autocast():
            logits, logits_adv = model(torch.cat([x, x_adv])).chunk(2)
        logits, logits_adv = logits.float(), logits_adv.float()
        p_adv = F.softmax(logits_adv, 1)
        others = p_adv.masked_fill(F.one_hot(y, p_adv.shape[1]).bool(), -1.0)  # exclude the true class
        bce = F.cross_entropy(logits_adv, y) - torch.log(1.0001 - others.max(1).values).mean()
        p = F.softmax(logits, 1)
        true_p = p.gather(1, y[:, None]).squeeze(1)
        loss = bce + self.options.beta * (kl_per_example(logits_adv, p) * (1.0000001 - true_p)).mean()
        return loss, logits_adv
