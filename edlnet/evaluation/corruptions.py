"""Random noise corruptions with the CIFAR-10-C severities, seeded per example.

Definitions follow ``make_cifar_c.py`` of Hendrycks & Dietterich ("Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019), on tensors in [0, 1]:

- ``impulse_noise``: salt-and-pepper on each value (skimage ``random_noise(mode="s&p")``:
  a value is replaced with probability ``amount``, by 1 or 0 with equal odds), amounts
  (.01, .02, .03, .05, .07) — CIFAR-10-C's. ``impulse_noise_imagenet_c`` uses ImageNet-C's
  amounts (.03, .06, .09, .17, .27), which are sometimes quoted for CIFAR by mistake.
- ``gaussian_noise``: ``x + N(0, c^2)``, c = (.04, .06, .08, .09, .10).
- ``shot_noise``: ``Poisson(x c) / c``, c = (500, 250, 100, 75, 50).
- ``speckle_noise``: ``x + x N(0, c^2)``, c = (.06, .1, .12, .16, .2).

Results are clipped to [0, 1] and, like the uint8 CIFAR-10-C files, rounded to 8 bits
(``quantize=False`` keeps floats). Rounding, not the release's truncation, so untouched
pixels keep their exact value.

Noise is drawn from a generator seeded by (seed, corruption, example index), so a corrupted
image does not depend on batching or sharding. The draws are shared across severities
(uniforms for impulse, normals for gaussian and speckle), so for one seed a higher severity
corrupts a superset of the values, by more: accuracy-versus-severity curves are not noisier
than they need to be.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

N_SEVERITIES = 5

SEVERITIES: dict[str, tuple[float, ...]] = {
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "impulse_noise_imagenet_c": (0.03, 0.06, 0.09, 0.17, 0.27),
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500.0, 250.0, 100.0, 75.0, 50.0),
    "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),
}


def _impulse(x: Tensor, c: float, g: torch.Generator) -> Tensor:
    flip = torch.rand(x.shape, generator=g) < c
    salt = torch.rand(x.shape, generator=g) < 0.5
    out = torch.where(flip & salt, torch.ones_like(x), x)
    return torch.where(flip & ~salt, torch.zeros_like(x), out)


def _gaussian(x: Tensor, c: float, g: torch.Generator) -> Tensor:
    return x + c * torch.randn(x.shape, generator=g)


def _shot(x: Tensor, c: float, g: torch.Generator) -> Tensor:
    return torch.poisson(x * c, generator=g) / c


def _speckle(x: Tensor, c: float, g: torch.Generator) -> Tensor:
    return x + x * c * torch.randn(x.shape, generator=g)


_NOISE: dict[str, Callable[[Tensor, float, torch.Generator], Tensor]] = {
    "impulse_noise": _impulse,
    "impulse_noise_imagenet_c": _impulse,
    "gaussian_noise": _gaussian,
    "shot_noise": _shot,
    "speckle_noise": _speckle,
}
CORRUPTIONS = tuple(SEVERITIES)


def example_seed(seed: int, corruption: str, index: int) -> int:
    """The generator seed of one example's noise (stable across runs and platforms)."""
    family = corruption.replace("_imagenet_c", "")  # same draws: only the amounts differ
    return zlib.crc32(f"{seed}:{family}:{index}".encode())


def corrupt(
    x: Tensor,
    corruption: str,
    severity: int,
    seed: int = 0,
    indices: Sequence[int] | Tensor | None = None,
    quantize: bool = True,
) -> Tensor:
    """Corrupt a batch of images in [0, 1] (N, C, H, W) at ``severity`` 1..5.

    ``indices`` are the examples' dataset indices (default ``0..N-1``); together with
    ``seed`` they fix each example's noise.
    """
    if corruption not in SEVERITIES:
        raise ValueError(f"unknown corruption {corruption!r}; use one of {', '.join(CORRUPTIONS)}")
    if not 1 <= int(severity) <= N_SEVERITIES:
        raise ValueError(f"severity must be 1..{N_SEVERITIES}, got {severity}")
    if not torch.is_floating_point(x) or (x.numel() and (x.min() < 0 or x.max() > 1)):
        raise ValueError("corrupt() takes float images in [0, 1]; convert uint8 with x.float() / 255")
    if indices is None:
        indices = range(x.shape[0])
    indices = [int(i) for i in indices]
    if len(indices) != x.shape[0]:
        raise ValueError(f"got {len(indices)} indices for {x.shape[0]} images")
    c = SEVERITIES[corruption][int(severity) - 1]
    noise = _NOISE[corruption]
    out = torch.empty_like(x)
    for row, index in enumerate(indices):
        g = torch.Generator().manual_seed(example_seed(seed, corruption, index))
        # Noise is drawn on the CPU in float32, so an image gets the same noise on any device.
        image = x[row].detach().to("cpu", torch.float32)
        out[row] = noise(image, c, g).clamp(0.0, 1.0).to(out)
    if quantize:
        out = torch.round(out * 255) / 255
    return out
