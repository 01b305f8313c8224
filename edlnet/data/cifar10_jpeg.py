"""CIFAR-10 re-encoded as JPEG class folders (``train/<class>/NNNN.jpg``, ``test/...``).

The pixels are not the original ones (JPEG compression: mean absolute difference about
5.8/255), so the dataset is named "CIFAR-10 (JPEG)" and every number computed on it should say
so. Within each class the files are numbered in the official release order; when the
release's label sequences ``cifar10-train-labels-original-order.npy`` and
``cifar10-test-labels-original-order.npy`` sit beside the archive or folder, the images are put
back in the official order, so image ``i`` here is image ``i`` of the official release.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .archive import is_archive
from .cifar import CIFAR10
from .dataset import ImageDataset
from .errors import DatasetError
from .imagefolder import read_image_folder

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
ARCHIVE_NAME = "cifar10-jpeg.tar.gz"
LABEL_FILES = {
    "train": "cifar10-train-labels-original-order.npy",
    "test": "cifar10-test-labels-original-order.npy",
}


def read_cifar10_jpeg(
    root: str | os.PathLike, *, cache: bool = True, cache_dir: str | os.PathLike | None = None
) -> ImageDataset:
    """Read "CIFAR-10 (JPEG)" from its archive, a folder holding it, or the extracted folder.

    Raises:
        DatasetError: if nothing with the layout is there, or its classes are not CIFAR-10's.
    """
    root = Path(root).expanduser()
    source = _locate(root)
    dataset = read_image_folder(source, name="CIFAR-10 (JPEG)", cache=cache, cache_dir=cache_dir)
    if dataset.class_names != CIFAR10_CLASSES:
        raise DatasetError(
            f"{source} is not CIFAR-10 (JPEG): expected the class folders {list(CIFAR10_CLASSES)}, "
            f"found {list(dataset.class_names)}"
        )
    info = dict(dataset.info, pixels="JPEG re-encoding of CIFAR-10 (not pixel-exact)")
    orders = {split: source.parent / f for split, f in LABEL_FILES.items()}
    if all(path.is_file() for path in orders.values()):
        x_train, y_train = _release_order(dataset.x_train, dataset.y_train, orders["train"])
        x_test, y_test = _release_order(dataset.x_test, dataset.y_test, orders["test"])
        info["order"] = "official release order"
        return ImageDataset(
            name=dataset.name,
            x_train=x_train,
            y_train=y_train,
            x_test=x_test,
            y_test=y_test,
            class_names=dataset.class_names,
            info=info,
        )
    return ImageDataset(
        name=dataset.name,
        x_train=dataset.x_train,
        y_train=dataset.y_train,
        x_test=dataset.x_test,
        y_test=dataset.y_test,
        class_names=dataset.class_names,
        info=info,
    )


def _locate(root: Path) -> Path:
    if is_archive(root) or (root / "train").is_dir():
        return root
    if (root / ARCHIVE_NAME).is_file():
        return root / ARCHIVE_NAME
    raise DatasetError(
        f"no CIFAR-10 (JPEG) in {root}: expected {root / ARCHIVE_NAME} or "
        f"{root}/train/<class>/NNNN.jpg "
        f"and {root}/test/<class>/NNNN.jpg; for the exact images use the official {CIFAR10.url}"
    )


def _release_order(x: torch.Tensor, y: torch.Tensor, label_file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder class-major images into the release order given by its label sequence.

    Official image ``i`` with label ``c`` is the ``k``-th image of class ``c``, where ``k``
    counts earlier images labelled ``c``; in class-major order it sits at
    ``start[c] + k``.
    """
    try:
        sequence = np.load(label_file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read the label sequence {label_file}: {error}") from None
    sequence = torch.from_numpy(np.asarray(sequence)).long()
    counts = torch.bincount(y, minlength=len(CIFAR10_CLASSES))
    fits = (
        sequence.dim() == 1
        and len(sequence) == len(y)
        and bool(((sequence >= 0) & (sequence < len(counts))).all())
        and torch.equal(torch.bincount(sequence, minlength=len(counts)), counts)
    )
    if not fits:
        raise DatasetError(
            f"{label_file} does not fit the images: expected {len(y)} labels with per-class "
            f"counts {counts.tolist()}"
        )
    starts = torch.cumsum(counts, 0) - counts
    by_class = torch.sort(sequence, stable=True).indices
    rank = torch.empty_like(sequence)
    rank[by_class] = torch.arange(len(sequence)) - starts[sequence[by_class]]
    position = starts[sequence] + rank
    return x[position], y[position]
