"""``standard``: natural training, cross-entropy on the clean images."""

from __future__ import annotations

import torch.nn.functional as F

from . import register_objective
from .base import Objective


@register_objective
class Standard(Objective):
    """Cross-entropy on clean images; no inner maximization."""

    name = "standard"
    adversarial = False

    def __call__(self, model, x, y, ctx):
        with ctx.autocast():
            logits = model(x)
        return F.cross_entropy(logits.float(), y), logits
