"""Seeded random noises: the λ sweep's ``--noises`` and noise recovery's random signs. The same
seed gives every analysis and every model the same noisy images."""

from __future__ import annotations

import torch

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
