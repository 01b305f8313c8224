"""Weight penalties added to any objective's loss: the ℓ1/ℓ2 robust-overfitting baselines of
Table 3 (``l1_penalty``, ``l2_penalty``)."""

from __future__ import annotations

import torch
from torch import nn


def weight_penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor | float:
    """ℓ1/ℓ2 penalties on weights (not BN, biases or β): Table 3's regularization baselines."""
    if not l1 and not l2:
        return 0.0
    total = 0.0
    for p in model.parameters():
        if p.requires_grad and p.dim() > 1:
            if l1:
                total = total + l1 * p.abs().sum()
            if l2:
                total = total + l2 * p.pow(2).sum()
    return total
