"""Mixup (Zhang et al., ICLR 2018) on a batch, driven by a ``torch.Generator``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .augment import random_draw_device


def mixup(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    alpha: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix every example with a random partner of the same batch.

    ``x' = lam * x + (1 - lam) * x[perm]`` and likewise for the one-hot targets, with one
    ``lam ~ Beta(alpha, alpha)`` per batch and a uniform permutation ``perm``.

    Args:
        x: images ``(N, C, H, W)``; ``uint8`` batches are first scaled to float in [0, 1]
            (mixing integers would round), float batches are mixed as they are.
        y: class labels ``(N,)``, or already soft targets ``(N, num_classes)``.
        num_classes: width of the targets.
        alpha: Beta concentration (> 0); 1.0 makes ``lam`` uniform, small values mix little.
        generator: source of ``lam`` and ``perm`` (``None``: torch's global RNG).

    Returns:
        ``(mixed images, soft targets (N, num_classes))``, both float; the targets work with
        ``torch.nn.functional.cross_entropy``, which accepts class probabilities.
    """
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be > 0, got {alpha}")
    if x.dtype == torch.uint8:
        x = x.float().div_(255)
    targets = F.one_hot(y.long(), num_classes).to(x.dtype) if y.dim() == 1 else y.to(x.dtype)
    lam = sample_beta(alpha, alpha, generator)
    draw_device = random_draw_device(generator)
    perm = torch.randperm(x.shape[0], generator=generator, device=draw_device).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm]


def sample_beta(a: float, b: float, generator: torch.Generator | None = None) -> float:
    """One draw of Beta(a, b) from ``generator``, as ``G_a / (G_a + G_b)`` with Gamma draws.

    ``torch.distributions.Beta`` cannot take a generator, so seeded mixup needs its own
    sampler.
    """
    while True:
        ga, gb = _gamma(a, generator), _gamma(b, generator)
        if ga + gb > 0:  # both can underflow to 0 for tiny shapes; draw again
            return ga / (ga + gb)


def _uniform(generator: torch.Generator | None) -> float:
    return float(torch.rand(1, generator=generator, device=random_draw_device(generator)))


def _gamma(shape: float, generator: torch.Generator | None) -> float:
    """Gamma(shape, 1) by Marsaglia & Tsang (2000), boosted by ``U^(1/shape)`` below 1."""
    if shape < 1:
        return _gamma(shape + 1, generator) * _uniform(generator) ** (1 / shape)
    d = shape - 1 / 3
    c = 1 / math.sqrt(9 * d)
    while True:
        z = float(torch.randn(1, generator=generator, device=random_draw_device(generator)))
        v = (1 + c * z) ** 3
        if v <= 0:
            continue
        u = _uniform(generator)
        if u > 0 and math.log(u) < 0.5 * z * z + d - d * v + d * math.log(v):
            return d * v
