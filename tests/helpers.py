"""Small helpers shared by tests: dense matrices of operators, tiny model arguments."""

from __future__ import annotations

import torch
from torch import nn


def dense_operator(fn, in_shape: tuple[int, ...]) -> torch.Tensor:
    """The matrix M with fn(x).flatten() = M @ x.flatten() for a linear fn (float64)."""
    n = int(torch.tensor(in_shape).prod())
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    cols = fn(eye)
    return cols.reshape(n, -1).T


def tiny_kwargs(name: str) -> dict:
    """The registered options that make model ``name`` small enough for a unit test."""
    from edlnet.models import model_entry

    return dict(model_entry(name).small_options)


def builds_own_dictionaries(name: str) -> bool:
    """Pursuit models build their own layers: they take no ``dl`` argument."""
    from edlnet.models import model_entry

    return model_entry(name).builds_own_dictionaries


def dl_kwargs(name: str, **kw) -> dict:
    """``dl``/dictionary options for models that convert convolutions; nothing for pursuit nets."""
    return {} if builds_own_dictionaries(name) else kw


def input_size(name: str) -> tuple[int, int, int]:
    """``(channels, height, width)`` of the images model ``name`` is registered for."""
    from edlnet.models import model_entry

    return model_entry(name).input_size


class PolicyProbe(nn.Module):
    """Identity that records the w_grad policy, autocast state, dtype and mode it ran under."""

    def __init__(self, policy: str = "detached") -> None:
        super().__init__()
        self.w_grad = policy
        self.seen: list[tuple] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.w_grad, torch.is_autocast_enabled("cpu"), x.dtype, self.training))
        return x
