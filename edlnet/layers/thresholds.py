"""Proximal operators of the sparsity penalty: soft thresholding and its non-negative version."""

from __future__ import annotations

import torch


def soft_threshold(v: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """T_τ(v) = sign(v)·max(|v| − τ, 0): the proximal operator of τ‖·‖₁."""
    return torch.sign(v) * torch.relu(v.abs() - threshold)


def nonneg_soft_threshold(v: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """max(v − τ, 0): the proximal operator of τ‖·‖₁ plus the constraint v ≥ 0 (a shifted ReLU)."""
    return torch.relu(v - threshold)


def threshold(v: torch.Tensor, tau: torch.Tensor | float, nonneg: bool) -> torch.Tensor:
    return nonneg_soft_threshold(v, tau) if nonneg else soft_threshold(v, tau)
