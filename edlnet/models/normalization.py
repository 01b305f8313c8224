"""Per-channel mean/std normalization as the model's first module (inputs stay in [0, 1])."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

DATASET_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "tinyimagenet": ((0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


class Normalize(nn.Module):
    """(x − mean) / std with the statistics as buffers, so attacks see pixels in [0, 1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


def normalization_for(stats: str | None) -> Normalize:
    key = (stats or "cifar10").lower().replace("-", "").replace("_", "")
    if key not in DATASET_STATS:
        raise ValueError(f"unknown normalization statistics {stats!r}; use one of {sorted(DATASET_STATS)}")
    return Normalize(*DATASET_STATS[key])
