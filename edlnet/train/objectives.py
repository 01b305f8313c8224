"""Training objectives, each with its original paper's defaults (values live in TrainConfig).

Every objective maps (model, x, y, context) to a scalar loss and the logits it used for
accuracy bookkeeping (adversarial logits for adversarial objectives):

- ``standard``: cross-entropy.
- ``pgd_at``: Madry et al. 2018 — cross-entropy on PGD-10 (ε 8/255, α 2/255) examples.
- ``trades``: Zhang et al. 2019 — CE(f(x), y) + β·KL(f(x) ‖ f(x')), x' maximizing the KL from
  x + 0.001·N(0, 1); β = 6 (Table 4 also uses 2 and 0.2).
- ``mart``: Wang et al. 2020 — BCE(f(x'), y) + β·KL(f(x) ‖ f(x'))·(1 − p_y(x)), β = 6.
- ``hat``: Rade & Moosavi-Dezfooli 2022 — TRADES (β = 3) + γ·CE(f(x + h(x' − x)), ŷ) with
  helper labels ŷ = argmax of a naturally trained model at x', γ = 0.5, h = 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .adversary import pgd_train
from .config import TrainConfig


@dataclass
class Context:
    """What an objective needs besides the batch."""

    cfg: TrainConfig
    generator: torch.Generator
    autocast: Callable[[], object]
    std_model: nn.Module | None = None  # HAT's naturally trained model

    def maximize(self, model: nn.Module, x: torch.Tensor, loss_fn, start: str = "uniform") -> torch.Tensor:
        c = self.cfg
        return pgd_train(
            model,
            x,
            loss_fn,
            c.eps_value(),
            c.eps_value("attack_alpha"),
            c.attack_steps,
            norm=c.attack_norm,
            start=start,
            generator=self.generator,
            training_mode=c.attack_mode == "train",
            w_grad=c.attack_w_grad,
            autocast=self.autocast(),
        )


Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor, Context], tuple[torch.Tensor, torch.Tensor]]


def _kl(logits_adv: torch.Tensor, p_clean: torch.Tensor) -> torch.Tensor:
    """Per-example KL(p_clean ‖ softmax(logits_adv))."""
    return F.kl_div(F.log_softmax(logits_adv.float(), 1), p_clean, reduction="none").sum(1)


def standard(model, x, y, ctx):
    with ctx.autocast():
        logits = model(x)
    return F.cross_entropy(logits.float(), y), logits


def pgd_at(model, x, y, ctx):
    x_adv = ctx.maximize(model, x, lambda out: F.cross_entropy(out.float(), y, reduction="sum"))
    with ctx.autocast():
        logits = model(x_adv)
    return F.cross_entropy(logits.float(), y), logits


def _trades_pair(model, x, ctx):
    with torch.no_grad(), ctx.autocast():
        was = model.training
        model.train(ctx.cfg.attack_mode == "train")
        p_clean = F.softmax(model(x).float(), 1)
        model.train(was)
    return ctx.maximize(model, x, lambda out: _kl(out, p_clean).sum(), start="normal")


def trades(model, x, y, ctx):
    x_adv = _trades_pair(model, x, ctx)
    with ctx.autocast():
        logits, logits_adv = model(torch.cat([x, x_adv])).chunk(2)
    p = F.softmax(logits.float(), 1)
    loss = F.cross_entropy(logits.float(), y) + ctx.cfg.trades_beta * _kl(logits_adv, p).mean()
    return loss, logits_adv


def mart(model, x, y, ctx):
    x_adv = ctx.maximize(model, x, lambda out: F.cross_entropy(out.float(), y, reduction="sum"))
    with ctx.autocast():
        logits, logits_adv = model(torch.cat([x, x_adv])).chunk(2)
    logits, logits_adv = logits.float(), logits_adv.float()
    p_adv = F.softmax(logits_adv, 1)
    others = p_adv.masked_fill(F.one_hot(y, p_adv.shape[1]).bool(), -1.0)  # exclude the true class
    bce = F.cross_entropy(logits_adv, y) - torch.log(1.0001 - others.max(1).values).mean()
    p = F.softmax(logits, 1)
    true_p = p.gather(1, y[:, None]).squeeze(1)
    loss = bce + ctx.cfg.mart_beta * (_kl(logits_adv, p) * (1.0000001 - true_p)).mean()
    return loss, logits_adv


def hat(model, x, y, ctx):
    if ctx.std_model is None:
        raise ValueError("objective hat needs a naturally trained model (hat_std_model)")
    c = ctx.cfg
    x_adv = _trades_pair(model, x, ctx)
    x_help = (x + c.hat_h * (x_adv - x)).clamp(0, 1)
    with torch.no_grad():
        y_help = ctx.std_model(x_adv).argmax(1)
    with ctx.autocast():
        logits, logits_adv, logits_help = model(torch.cat([x, x_adv, x_help])).chunk(3)
    p = F.softmax(logits.float(), 1)
    loss = (
        F.cross_entropy(logits.float(), y)
        + c.hat_beta * _kl(logits_adv, p).mean()
        + c.hat_gamma * F.cross_entropy(logits_help.float(), y_help)
    )
    return loss, logits_adv


OBJECTIVES: dict[str, Objective] = {
    "standard": standard,
    "pgd_at": pgd_at,
    "trades": trades,
    "mart": mart,
    "hat": hat,
}


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
