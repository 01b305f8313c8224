"""Adversarial and noisy inputs for the analyses.

Attacked inputs come from the library's PGD under both reweighting-gradient policies with the
per-example worst case kept (``Adaptive``), because either policy alone can under-attack a
dictionary network (DESIGN.md). Random noises are seeded so every analysis sees the same ones.
"""

from __future__ import annotations

import torch
from torch import nn

from ..attacks import PGD, Adaptive, AttackResult


def pgd_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: str = "8/255", steps: int = 10, seed: int = 0
) -> AttackResult:
    """ℓ∞ PGD-``steps`` at ``eps`` (pixels), worst case over the ``w_grad`` policies."""
    return Adaptive(PGD(model, eps=eps, norm="Linf", steps=steps, seed=seed)).run(x, y)


NOISE_KINDS = ("clean", "gaussian", "impulse", "sign")


def parse_noise(spec: str) -> tuple[str, float]:
    """``"gaussian:0.08"`` → ("gaussian", 0.08); ``"clean"`` → ("clean", 0.0)."""
    kind, _, level = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in NOISE_KINDS or (kind != "clean" and not level):
        raise ValueError(
            f"unknown noise {spec!r}; write clean, gaussian:STD, impulse:FRACTION "
            "or sign:EPS (e.g. gaussian:0.08)"
        )
    try:
        return kind, float(level) if level else 0.0
    except ValueError:
        raise ValueError(f"noise level in {spec!r} is not a number") from None


def add_noise(x: torch.Tensor, spec: str, seed: int = 0) -> torch.Tensor:
    """Images in [0, 1] with seeded noise, clipped back to [0, 1]:

    - ``gaussian:s`` adds N(0, s²) per pixel;
    - ``impulse:p`` sets a fraction p of the pixels (per channel) to 0 or 1 (salt and pepper,
      the "impulse noise" corruption);
    - ``sign:e`` adds ±e per pixel with random signs (random noise at an ℓ∞ budget e).
    """
    kind, level = parse_noise(spec)
    if kind == "clean":
        return x.clone()
    gen = torch.Generator().manual_seed(seed)
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=gen) * level
        return (x + noise.to(x)).clamp(0, 1)
    if kind == "sign":
        signs = torch.randint(0, 2, x.shape, generator=gen).float() * 2 - 1
        return (x + level * signs.to(x)).clamp(0, 1)
    hit = torch.rand(x.shape, generator=gen) < level
    salt = torch.rand(x.shape, generator=gen) < 0.5
    return torch.where(hit.to(x.device), salt.to(x), x)
