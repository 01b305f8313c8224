"""Turning arrays and encoded image files into ``uint8 (N, 3, H, W)`` arrays."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import DatasetError

# An image to decode: a file on disk, or the bytes of an archive member.
ImageSource = Path | bytes

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"})


def is_image_name(name: str) -> bool:
    """True for file names with an image suffix; hidden files (``._x.jpg``) are not images."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and Path(base).suffix.lower() in IMAGE_SUFFIXES


def to_nchw_uint8(x: np.ndarray, what: str) -> np.ndarray:
    """Return ``x`` as a C-contiguous ``uint8`` array ``(N, 3, H, W)``.

    Accepts NHWC and NCHW with 3 or 1 channels, and ``(N, H, W)`` grayscale; gray images are
    repeated to three channels so every model sees the same input shape.

    Args:
        x: the image array.
        what: where the array came from, for error messages (e.g. ``"key 'x' of a.npz"``).
    """
    if x.dtype != np.uint8:
        raise DatasetError(f"{what}: expected uint8 pixels in [0, 255], got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DatasetError(f"{what}: expected images (N, H, W, C) or (N, C, H, W), got {x.shape}")
    first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
    if last and not first:
        x = x.transpose(0, 3, 1, 2)
    elif first == last:
        raise DatasetError(
            f"{what}: cannot tell channels from the shape {x.shape}; "
            "expected 1 or 3 channels first (N, C, H, W) or last (N, H, W, C)"
        )
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    return np.ascontiguousarray(x)


def decode_image(source: ImageSource, name: str) -> np.ndarray:
    """Decode one image file to an RGB ``uint8`` array ``(H, W, 3)``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DatasetError(f"cannot decode image {name}: {error}") from None


def decode_images(items: Sequence[tuple[str, ImageSource]]) -> np.ndarray:
    """Decode equally sized images into one ``uint8`` array ``(N, 3, H, W)``, in order.

    The output is preallocated from the first image's size, so peak memory is the result plus
    one image rather than a list of arrays plus their stacked copy.
    """
    if not items:
        return np.zeros((0, 3, 1, 1), dtype=np.uint8)
    first_name, first_source = items[0]
    first = decode_image(first_source, first_name)
    height, width = first.shape[:2]
    out = np.empty((len(items), 3, height, width), dtype=np.uint8)
    out[0] = first.transpose(2, 0, 1)
    for i, (name, source) in enumerate(items[1:], start=1):
        image = decode_image(source, name)
        if image.shape[:2] != (height, width):
            raise DatasetError(
                f"image {name} is {image.shape[1]}x{image.shape[0]} but {first_name} is "
                f"{width}x{height}; every image of a dataset must have the same size "
                "(resize them beforehand)"
            )
        out[i] = image.transpose(2, 0, 1)
    return out
