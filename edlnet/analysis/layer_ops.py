"""The operators a dictionary layer actually uses, for analyses that look inside it.

``DictConv2d`` runs RISTA on the spectrally normalized dictionary Â = A/‖A‖₂ (by default) and
rescales the code; the objective terms, reconstructions and the operator E = I − Â*Â of
Theorem 4.2 below all refer to that normalized problem, which is the one RISTA solves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from ..layers.conv_ops import dict_adjoint, dict_apply
from ..layers.dict_conv import DictConv2d


def solver_dictionary(layer: DictConv2d, x: torch.Tensor) -> tuple[torch.Tensor, Any, Any]:
    """(dictionary RISTA runs on, code scale, step η) exactly as the layer computes them."""
    # The layer's own helper, so these analyses can never drift from what forward() does.
    return layer._solver_inputs(x)


def geometry(layer: DictConv2d) -> dict[str, Any]:
    return dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)


def reconstruct(layer: DictConv2d, x: torch.Tensor) -> torch.Tensor:
    """x̂ = Â*(ẑ): the reconstruction of the layer's input from its own code, where ẑ is the
    code of the problem RISTA solves (the layer output divided by its scale ‖A‖₂, bias-free)."""
    weight, scale, _ = solver_dictionary(layer, x)
    z_hat = layer.solve(x) / scale
    return dict_adjoint(z_hat, weight, x.shape[-2:], **geometry(layer))


def residual_operator(layer: DictConv2d, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """E(v) = v − Â*Â v (Theorem 4.2's reconstruction operator) for signals shaped like ``x``."""
    weight, _, _ = solver_dictionary(layer, x)
    geom = geometry(layer)
    return v - dict_adjoint(dict_apply(v, weight, **geom), weight, v.shape[-2:], **geom)


def learned_beta(layer: DictConv2d) -> float:
    """The layer's elastic β (sigmoid of its parameter), whatever its current mode."""
    return float(torch.sigmoid(layer.beta_logit.detach()))


@contextlib.contextmanager
def configured(layers: list[DictConv2d], **options: Any) -> Iterator[None]:
    """Temporarily ``configure`` layers (e.g. ``n_steps``, ``lam``, ``mode``); restores each
    layer's options and β afterwards, even after an exception."""
    saved = [(m.config(), m.beta_logit.detach().clone()) for m in layers]
    try:
        for m in layers:
            m.configure(**options)
        yield
    finally:
        for m, (cfg, beta_logit) in zip(layers, saved):
            m.configure(**cfg)
            with torch.no_grad():
                m.beta_logit.copy_(beta_logit)
