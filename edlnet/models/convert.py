"""Turn the ``nn.Conv2d`` modules of any model into ``DictConv2d`` with the same weights, and back."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from ..layers.dict_conv import DictConv2d


def _padding_of(conv: nn.Conv2d) -> tuple[int, int] | None:
    """Numeric padding of a Conv2d, or None when it has no exact zero-padded adjoint here."""
    if conv.padding_mode != "zeros":
        return None
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        pads = []
        for k, d, s in zip(conv.kernel_size, conv.dilation, conv.stride):
            total = d * (k - 1)
            if total % 2 or s != 1:
                return None
            pads.append(total // 2)
        return (pads[0], pads[1])
    return tuple(conv.padding)  # type: ignore[return-value]


def _to_dict(conv: nn.Conv2d, options: dict[str, Any]) -> DictConv2d | None:
    padding = _padding_of(conv)
    if padding is None:
        return None
    layer = DictConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        padding,
        bias=conv.bias is not None,
        dilation=conv.dilation,
        groups=conv.groups,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
        **options,
    )
    with torch.no_grad():
        layer.weight.copy_(conv.weight)
        if conv.bias is not None:
            layer.bias.copy_(conv.bias)
    layer.weight.requires_grad_(conv.weight.requires_grad)
    layer.train(conv.training)
    return layer


def _to_conv(layer: DictConv2d) -> nn.Conv2d:
    conv = nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        layer.groups,
        bias=layer.bias is not None,
        device=layer.weight.device,
        dtype=layer.weight.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(layer.weight)
        if layer.bias is not None:
            conv.bias.copy_(layer.bias)
    conv.train(layer.training)
    return conv


def convert(
    model: nn.Module, mode: str | None = "elastic", max_layers: int | None = None, **dl_options: Any
) -> nn.Module:
    """Replace convolutions in place and return ``model``.

    ``mode="vanilla"|"robust"|"elastic"`` turns each ``nn.Conv2d`` (the first ``max_layers`` in
    module order, or all) into a :class:`DictConv2d` carrying the same weight and bias;
    ``dl_options`` (``n_steps``, ``lam``, ``beta``, ...) reach every new layer, and existing
    dictionary layers are reconfigured with them. ``mode=None`` turns every ``DictConv2d``
    back into an ``nn.Conv2d`` with the same weights. Convolutions without an exact adjoint here
    (non-zero padding modes, 'same' padding with even kernels) are left as they are, with a warning.
    """
    if max_layers is not None and max_layers < 0:
        raise ValueError(f"max_layers must be >= 0, got {max_layers}")
    converted = 0
    skipped: list[str] = []
    # Walk the convolutions themselves in module order, so "the first N" means what it says.
    for full, child in list(model.named_modules()):
        if not full:
            continue  # the model itself
        parent_name, _, child_name = full.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if mode is None:
            if isinstance(child, DictConv2d):
                setattr(parent, child_name, _to_conv(child))
            continue
        if max_layers is not None and converted >= max_layers:
            break
        if isinstance(child, DictConv2d):
            child.configure(mode=mode, **dl_options)
            converted += 1
        elif type(child) is nn.Conv2d:
            new = _to_dict(child, {"mode": mode, **dl_options})
            if new is None:
                skipped.append(full)
                continue
            setattr(parent, child_name, new)
            converted += 1
    if skipped:
        warnings.warn(
            f"convert: left {len(skipped)} convolution(s) unconverted (no exact zero-padded "
            f"adjoint): {', '.join(skipped)}",
            stacklevel=2,
        )
    return model
