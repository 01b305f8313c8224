"""Hidden embeddings z_l of every layer of a model, in order, for any model the library builds:
the outputs of dictionary layers and convolutions (ResNets, EDLNets, partly converted ones),
or the codes of every pursuit layer (pursuit networks)."""

from __future__ import annotations

import torch
from torch import nn

from ..layers.dict_conv import DictConv2d
from ..models.capture import capture_layers


@torch.no_grad()
def hidden_embeddings(model: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """``[(layer name, z_l)]`` for images ``x`` in [0, 1], in forward order."""
    pursuit = getattr(model, "pursuit", None)
    if pursuit is not None and hasattr(pursuit, "solve"):
        codes, _ = pursuit.solve(model.normalize(x))
        return [(f"pursuit.layers.{j}", z) for j, z in enumerate(codes)]
    order = {m: i for i, m in enumerate(model.modules())}
    with capture_layers(model, kinds=(DictConv2d, nn.Conv2d)) as records:
        model(x)
    if not records:
        raise ValueError(
            f"{type(model).__name__} has no convolution or dictionary layers whose outputs could be compared"
        )
    modules = dict(model.named_modules())
    names = sorted(records, key=lambda n: order[modules[n]])
    return [(n, records[n]["output"]) for n in names]


def relative_difference(z: torch.Tensor, z_adv: torch.Tensor) -> torch.Tensor:
    """Per-example ‖z − z'‖₂ / ‖z‖₂ (Figure 5's embedding difference)."""
    num = (z - z_adv).flatten(1).norm(dim=1)
    return num / z.flatten(1).norm(dim=1).clamp_min(1e-30)
