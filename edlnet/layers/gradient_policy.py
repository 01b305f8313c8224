"""Switch the reweighting-gradient policy of every dictionary layer in a model.

Gradient attacks on dictionary networks must be run with both policies (``exact``: autograd
through the reweighting w; ``detached``: w is a constant in the backward pass, BPDA-style) and
the per-example worst case kept, because either one alone can under-estimate the attack.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

W_GRAD_POLICIES = ("exact", "detached")


def _policy_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if hasattr(m, "w_grad") and not isinstance(m, type)]


def has_w_grad_policy(model: nn.Module) -> bool:
    """True when the model contains at least one layer whose backward pass has a w policy."""
    return bool(_policy_modules(model))


@contextlib.contextmanager
def w_grad_policy(model: nn.Module, policy: str | None) -> Iterator[nn.Module]:
    """Temporarily set ``w_grad`` of every dictionary layer; ``None`` leaves the model as is.

    Restores each layer's own policy on exit, even after an exception.
    """
    if policy is None:
        yield model
        return
    if policy not in W_GRAD_POLICIES:
        raise ValueError(f"unknown w_grad policy {policy!r}; use one of {W_GRAD_POLICIES}")
    modules = _policy_modules(model)
    saved = [m.w_grad for m in modules]
    try:
        for m in modules:
            m.w_grad = policy
        yield model
    finally:
        for m, p in zip(modules, saved):
            m.w_grad = p
