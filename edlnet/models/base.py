"""Shared classifier shape: normalization → features → pooled head, with timm-style methods."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """Base for every model: ``forward(x) = forward_head(forward_features(x))``.

    ``forward_features`` takes images in [0, 1] and returns the final feature map;
    ``forward_head`` pools it and applies the linear classifier.
    """

    normalize: nn.Module
    fc: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.normalize(x))

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(feats, 1), 1)
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
