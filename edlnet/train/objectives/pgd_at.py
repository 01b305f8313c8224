"""``pgd_at``: PGD adversarial training (Madry et al., ICLR 2018).

Cross-entropy on the last iterate of PGD from a uniform start in the ball (the paper: PGD-10,
ε 8/255, α 2/255; ``attack_steps: 1`` with ``attack_alpha: 10/255`` is FGSM with random start,
Wong et al. 2020).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register_objective
from .base import Context, Objective


@register_objective
class PGDAT(Objective):
    """Cross-entropy on PGD examples that maximize the cross-entropy."""

    name = "pgd_at"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context):
        x_adv = ctx.maximize(model, x, lambda out: F.cross_entropy(out.float(), y, reduction="sum"))
        with ctx.autocast():
            logits = model(x_adv)
        return F.cross_entropy(logits.float(), y), logits
