"""Small helpers shared by tests: dense matrices of operators, tiny model arguments."""

from __future__ import annotations

import torch


def dense_operator(fn, in_shape: tuple[int, ...]) -> torch.Tensor:
    """The matrix M with fn(x).flatten() = M @ x.flatten() for a linear fn (float64)."""
    n = int(torch.tensor(in_shape).prod())
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    cols = fn(eye)
    return cols.reshape(n, -1).T


def tiny_kwargs(name: str) -> dict:
    """Arguments that make a registered model small enough for a unit test."""
    if name.startswith("wide_resnet"):
        return {"widen_factor": 1}
    if "resnet" in name:
        return {"width": 4}
    if "pursuit" in name:
        return {"widths": (4, 8, 8)}
    return {}


def builds_own_dictionaries(name: str) -> bool:
    """Pursuit models build their own layers: they take no ``dl`` argument."""
    from edlnet.models.registry import _REGISTRY

    return getattr(_REGISTRY[name], "builds_own_dictionaries", False)


def dl_kwargs(name: str, **kw) -> dict:
    """``dl``/dictionary options for models that convert convolutions; nothing for pursuit nets."""
    return {} if builds_own_dictionaries(name) else kw


def input_size(name: str) -> int:
    return 64 if name.endswith("_tiny") else 32
