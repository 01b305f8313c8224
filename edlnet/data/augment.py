"""Batched image augmentation on any device: random crop with padding, flip, Cutout.

Every function takes a batch ``(N, C, H, W)`` of ``uint8`` or float images on any device and
returns a new batch of the same dtype, shape and device. Randomness comes from ``generator``
(a ``torch.Generator``; ``None`` uses torch's global RNG), drawn on the generator's device
and moved to the batch's, so a CPU generator gives the same augmentation on CPU and GPU. The
deterministic cores (:func:`shift_crop`, :func:`flip_where`, :func:`cutout_at`) take the
random parameters explicitly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_draw_device(generator: torch.Generator | None) -> torch.device:
    """Device on which random numbers for ``generator`` must be drawn."""
    return generator.device if generator is not None else torch.device("cpu")


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    draw = torch.randint(0, high, (n,), generator=generator, device=random_draw_device(generator))
    return draw.to(device)


def _check_batch(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {tuple(x.shape)}")


def shift_crop(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, padding: int) -> torch.Tensor:
    """Crop image ``i`` of the zero-padded batch at offset ``(dy[i], dx[i])``.

    ``out[i] = pad(x[i], padding)[:, dy[i]:dy[i] + H, dx[i]:dx[i] + W]`` with offsets in
    ``[0, 2 * padding]``; offset ``(padding, padding)`` returns the image unchanged.
    """
    _check_batch(x)
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = dy.to(x.device).long()[:, None] + torch.arange(h, device=x.device)
    cols = dx.to(x.device).long()[:, None] + torch.arange(w, device=x.device)
    # One gather through broadcast indices: no Python loop over images or offsets.
    return padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(c, device=x.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def random_crop(
    x: torch.Tensor, padding: int = 4, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero-pad each image by ``padding`` pixels and crop back to its size at a uniform offset.

    The standard CIFAR augmentation (padding 4): every one of the ``(2p + 1)^2`` crops of the
    padded image is equally likely, independently per image.
    """
    _check_batch(x)
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n = x.shape[0]
    dy = _randint(2 * padding + 1, n, generator, x.device)
    dx = _randint(2 * padding + 1, n, generator, x.device)
    return shift_crop(x, dy, dx, padding)


def flip_where(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror (left-right) the images where ``mask`` (bool, shape ``(N,)``) is true."""
    _check_batch(x)
    return torch.where(mask.to(x.device)[:, None, None, None], x.flip(-1), x)


def random_flip(x: torch.Tensor, p: float = 0.5, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right independently with probability ``p``."""
    _check_batch(x)
    draw = torch.rand(x.shape[0], generator=generator, device=random_draw_device(generator))
    return flip_where(x, draw < p)


def cutout_at(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: int) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square of image ``i`` centred at ``(cy[i], cx[i])``.

    Rows ``cy - size // 2`` to ``cy - size // 2 + size - 1`` (likewise columns), clipped at
    the border, so squares near an edge are partly outside the image as in DeVries & Taylor.
    """
    _check_batch(x)
    _, _, h, w = x.shape
    top = cy.to(x.device).long()[:, None] - size // 2
    left = cx.to(x.device).long()[:, None] - size // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + size)
    in_cols = (cols >= left) & (cols < left + size)
    return x.masked_fill(in_rows[:, None, :, None] & in_cols[:, None, None, :], 0)


def cutout(x: torch.Tensor, size: int = 16, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Cutout (DeVries & Taylor, 2017): zero one square per image at a uniform centre.

    ``size`` 16 is the paper's choice for CIFAR-10 (8 for CIFAR-100).
    """
    _check_batch(x)
    if size < 0:
        raise ValueError(f"cutout size must be >= 0, got {size}")
    n, _, h, w = x.shape
    cy = _randint(h, n, generator, x.device)
    cx = _randint(w, n, generator, x.device)
    return cutout_at(x, cy, cx, size)


def crop_flip(x: torch.Tensor, padding: int = 4, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """The standard CIFAR training augmentation: :func:`random_crop` then :func:`random_flip`."""
    return random_flip(random_crop(x, padding, generator=generator), generator=generator)
