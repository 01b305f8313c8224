"""The bundled sample of real, pixel-exact CIFAR-10 images.

``sample/cifar10_sample.npz`` holds the first 360 images of each of the five official
training batches (1,800 images, official training indices ``10000 * b + j`` for
``b < 5, j < 360``) and the first 1,000 official test images, exactly as released. They were
cut from ``cifar10-exact-subset.npz`` (the first 1,017 images of each training batch and of
the test set) by :func:`build_cifar10_sample`. A bigger sample does not fit the 8 MB budget:
CIFAR images barely compress (about 2.8 KB each with zlib), so 360 per batch plus the 1,000
test images (7.9 MB) is what fits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .cifar10_jpeg import CIFAR10_CLASSES
from .dataset import ImageDataset
from .npz import read_npz

SAMPLE_NAME = "CIFAR-10 sample"
TRAIN_PER_BATCH = 360
N_TEST = 1000
_BATCH_SIZE = 10_000  # images per official training batch


def sample_path() -> Path:
    """Path of the bundled ``cifar10_sample.npz``."""
    # Installed packages are plain directories (setuptools does not zip), so the data file
    # sits beside this module; pyproject's package-data must list data/sample/*.npz.
    return Path(__file__).resolve().parent / "sample" / "cifar10_sample.npz"


def load_cifar10_sample() -> ImageDataset:
    """The bundled sample: 1,800 training and 1,000 test CIFAR-10 images, pixel-exact.

    Train and test keep the official order; ``info`` records which official images they are.
    """
    dataset = read_npz(sample_path(), name=SAMPLE_NAME)
    info = dict(
        dataset.info,
        pixels="exact (official release)",
        train_images=f"first {TRAIN_PER_BATCH} of each official training batch",
        test_images=f"first {N_TEST} official test images",
    )
    return ImageDataset(
        name=SAMPLE_NAME,
        x_train=dataset.x_train,
        y_train=dataset.y_train,
        x_test=dataset.x_test,
        y_test=dataset.y_test,
        class_names=dataset.class_names,
        info=info,
    )


def sample_official_indices() -> tuple[np.ndarray, np.ndarray]:
    """Official CIFAR-10 indices ``(train, test)`` of the sample's images, in sample order."""
    with np.load(sample_path(), allow_pickle=False) as data:
        return data["train_index"], data["test_index"]


def build_cifar10_sample(
    exact_subset: str | os.PathLike,
    out: str | os.PathLike,
    per_batch: int = TRAIN_PER_BATCH,
    n_test: int = N_TEST,
) -> Path:
    """Write the sample from ``cifar10-exact-subset.npz`` (how the bundled file was made).

    The subset stores the first ``prefix`` images of each training batch back to back
    (``prefix`` = ``train_prefix_len_per_batch``, 1,017) and the first test images in order.
    """
    with np.load(exact_subset, allow_pickle=False) as data:
        prefix = int(data["train_prefix_len_per_batch"])
        if per_batch > prefix or n_test > len(data["x_test_first"]):
            raise ValueError(f"the subset has only {prefix} images per batch")
        rows = np.concatenate([np.arange(b * prefix, b * prefix + per_batch) for b in range(5)])
        official = np.concatenate([np.arange(b * _BATCH_SIZE, b * _BATCH_SIZE + per_batch) for b in range(5)])
        nchw = (0, 3, 1, 2)
        arrays = {
            "x_train": np.ascontiguousarray(data["x_train_batchprefixes"][rows].transpose(nchw)),
            "y_train": data["y_train_batchprefixes"][rows].astype(np.int64),
            "x_test": np.ascontiguousarray(data["x_test_first"][:n_test].transpose(nchw)),
            "y_test": data["y_test_first"][:n_test].astype(np.int64),
            "class_names": np.array(CIFAR10_CLASSES),
            "train_index": official,
            "test_index": np.arange(n_test),
        }
    out = Path(out)
    np.savez_compressed(out, **arrays)
    return out
