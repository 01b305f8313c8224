"""Collect each dictionary layer's input and output during a forward pass (for the analyses)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..layers.dict_conv import DictConv2d


@contextlib.contextmanager
def capture_layers(
    model: nn.Module, kinds: tuple[type, ...] = (DictConv2d,), detach: bool = True
) -> Iterator[dict[str, dict[str, torch.Tensor]]]:
    """Context manager yielding ``{layer_name: {"input": x, "output": z}}``, filled by every
    forward inside the block (the last forward wins). ``kinds`` selects the layer types, e.g.
    ``(DictConv2d, nn.Conv2d)`` to compare a converted and a plain network."""
    records: dict[str, dict[str, torch.Tensor]] = {}
    handles = []

    def hook(name: str):
        def fn(_m, inputs, output):
            x = inputs[0]
            records[name] = {
                "input": x.detach() if detach else x,
                "output": output.detach() if detach else output,
            }

        return fn

    for name, m in model.named_modules():
        if isinstance(m, kinds):
            handles.append(m.register_forward_hook(hook(name)))
    try:
        yield records
    finally:
        for h in handles:
            h.remove()
