"""Per-example attack losses; every one is maximized by the attacker."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of the true class, per example."""
    return F.cross_entropy(logits, y, reduction="none")


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """Carlini-Wagner margin ``max_{j != y} z_j - z_y`` per example; positive means fooled.

    PGD with this loss is the "C&W" attack of robustness tables (Carlini & Wagner 2017, f_6
    without the confidence clamp, so the attacker keeps pushing past the boundary).
    """
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.amax(dim=1) - true


LOSSES: dict[str, LossFn] = {"ce": cross_entropy, "margin": margin}


def get_loss(name: str) -> LossFn:
    """The loss called ``name`` ("ce" or "margin")."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown attack loss {name!r}; use one of {sorted(LOSSES)}") from None


def is_fooled(logits: Tensor, y: Tensor) -> Tensor:
    """True where the predicted class differs from the label."""
    return logits.argmax(dim=1) != y


__all__ = ["LOSSES", "LossFn", "cross_entropy", "get_loss", "is_fooled", "margin"]
