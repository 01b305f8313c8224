"""``standard``: natural training, cross-entropy on the clean images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register_objective
from .base import Context, Objective


@register_objective
class Standard(Objective):
    """Cross-entropy on clean images; no inner maximization."""

    name = "standard"
    adversarial = False

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context):
        with ctx.autocast():
            logits = model(x)
        return F.cross_entropy(logits.float(), y), logits
