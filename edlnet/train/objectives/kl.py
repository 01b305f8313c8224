"""The KL pieces TRADES, MART and HAT share: the per-example KL term, and TRADES' adversary
that maximizes it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..adversary import model_mode
from .base import Context


def kl_per_example(logits_adv: torch.Tensor, p_clean: torch.Tensor) -> torch.Tensor:
    """KL(p_clean ‖ softmax(logits_adv)) per example, in fp32 whatever the run's precision."""
    return F.kl_div(F.log_softmax(logits_adv.float(), 1), p_clean, reduction="none").sum(1)


def kl_adversarial(model: nn.Module, x: torch.Tensor, ctx: Context) -> torch.Tensor:
    """TRADES' x': maximizes KL(f(x) ‖ f(x')) from x + 0.001·N(0, 1). The clean prediction f(x)
    is taken without gradient in the maximization's mode (``attack_mode``)."""
    with torch.no_grad(), ctx.autocast(), model_mode(model, ctx.adversary.training_mode):
        p_clean = F.softmax(model(x).float(), 1)
    return ctx.maximize(model, x, lambda out: kl_per_example(out, p_clean).sum(), start="normal")
