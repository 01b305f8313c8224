"""CIFAR-10 and CIFAR-100 from the official python pickles, extracted or as the tarball.

Layouts read (https://www.cs.toronto.edu/~kriz/cifar.html):

* ``cifar-10-batches-py/``: ``data_batch_1`` ... ``data_batch_5``, ``test_batch`` (dicts with
  ``b'data'`` uint8 ``(10000, 3072)`` rows of 1024 red, 1024 green, 1024 blue pixels and
  ``b'labels'``), and ``batches.meta`` (``b'label_names'``);
* ``cifar-100-python/``: ``train``, ``test`` (``b'data'``, ``b'fine_labels'``) and ``meta``
  (``b'fine_label_names'``). The 100 fine labels are used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .archive import is_archive, iter_archive
from .cache import load_or_decode
from .dataset import ImageDataset
from .errors import DatasetError
from .pickles import get_key, load_pickle


@dataclass(frozen=True)
class CifarLayout:
    """File names and dict keys of one CIFAR release."""

    name: str
    kind: str
    folder: str
    archive: str
    url: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str


CIFAR10 = CifarLayout(
    name="CIFAR-10",
    kind="cifar10",
    folder="cifar-10-batches-py",
    archive="cifar-10-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    train=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test=("test_batch",),
    meta="batches.meta",
    label_key="labels",
    names_key="label_names",
)

CIFAR100 = CifarLayout(
    name="CIFAR-100",
    kind="cifar100",
    folder="cifar-100-python",
    archive="cifar-100-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    train=("train",),
    test=("test",),
    meta="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
)


def read_cifar10(
    root: str | os.PathLike, *, cache: bool = True, cache_dir: str | os.PathLike | None = None
) -> ImageDataset:
    """Read CIFAR-10 from ``root``.

    ``root`` may be the folder holding ``cifar-10-batches-py/``, that folder itself, the
    ``cifar-10-python.tar.gz`` tarball, or a folder holding the tarball.

    Raises:
        DatasetError: naming the expected files and the download URL if they are missing or
            malformed.
    """
    return read_cifar(CIFAR10, root, cache=cache, cache_dir=cache_dir)


def read_cifar100(
    root: str | os.PathLike, *, cache: bool = True, cache_dir: str | os.PathLike | None = None
) -> ImageDataset:
    """Read CIFAR-100 (fine labels) from ``root``; ``root`` as in :func:`read_cifar10`."""
    return read_cifar(CIFAR100, root, cache=cache, cache_dir=cache_dir)


def read_cifar(
    layout: CifarLayout,
    root: str | os.PathLike,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> ImageDataset:
    """Read the CIFAR release described by ``layout`` (see :func:`read_cifar10`)."""
    root = Path(root).expanduser()
    names = (*layout.train, *layout.test, layout.meta)
    location = _locate(layout, root)
    if is_archive(location):
        files = [location]
    else:
        files = [location / n for n in names]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise DatasetError(
                f"incomplete {layout.name} in {location}: "
                f"missing {', '.join(f.name for f in missing)}; "
                f"download {layout.url} and extract it in {root}"
            )

    def decode() -> ImageDataset:
        if is_archive(location):
            raw = _read_archive(layout, location, names)
        else:
            raw = {n: (location / n).read_bytes() for n in names}
        return _assemble(layout, raw, location)

    return load_or_decode(layout.kind, location, files, decode, cache=cache, cache_dir=cache_dir)


def _locate(layout: CifarLayout, root: Path) -> Path:
    """The batches folder or the tarball under ``root``."""
    if is_archive(root):
        return root
    if root.is_dir():
        for candidate in (root / layout.folder, root):
            if (candidate / layout.train[0]).is_file():
                return candidate
        if (root / layout.archive).is_file():
            return root / layout.archive
    raise DatasetError(
        f"no {layout.name} batches in {root}: expected {root / layout.folder / layout.train[0]} "
        f"... {layout.test[-1]}, {layout.meta} (or {root / layout.archive}); "
        f"download {layout.url} and extract it there"
    )


def _read_archive(layout: CifarLayout, archive: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    wanted = set(names)

    def select(member: str) -> bool:
        parent, _, base = member.rpartition("/")
        return base in wanted and parent.rpartition("/")[2] in ("", layout.folder)

    raw = {member.rpartition("/")[2]: data for member, data in iter_archive(archive, select)}
    missing = [n for n in names if n not in raw]
    if missing:
        raise DatasetError(
            f"{archive} is not the {layout.name} tarball: it lacks "
            f"{', '.join(f'{layout.folder}/{n}' for n in missing)}; download {layout.url}"
        )
    return raw


def _assemble(layout: CifarLayout, raw: dict[str, bytes], location: Path) -> ImageDataset:
    meta_name = f"{location}/{layout.meta}"
    class_names = [
        n.decode() if isinstance(n, bytes) else str(n)
        for n in get_key(load_pickle(raw[layout.meta], meta_name), layout.names_key, meta_name)
    ]
    x_train, y_train = _read_batches(layout, raw, layout.train, location, len(class_names))
    x_test, y_test = _read_batches(layout, raw, layout.test, location, len(class_names))
    return ImageDataset(
        name=layout.name,
        x_train=torch.from_numpy(x_train),
        y_train=torch.from_numpy(y_train),
        x_test=torch.from_numpy(x_test),
        y_test=torch.from_numpy(y_test),
        class_names=tuple(class_names),
        info={"source": str(location), "pixels": "exact (official release)"},
    )


def _read_batches(
    layout: CifarLayout,
    raw: dict[str, bytes],
    names: tuple[str, ...],
    location: Path,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for n in names:
        where = f"{location}/{n}"
        batch = load_pickle(raw[n], where)
        data = np.asarray(get_key(batch, "data", where))
        label = np.asarray(get_key(batch, layout.label_key, where))
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DatasetError(f"{where}: expected 'data' as uint8 (N, 3072), got {data.dtype} {data.shape}")
        if label.ndim != 1 or len(label) != len(data) or not np.issubdtype(label.dtype, np.integer):
            raise DatasetError(
                f"{where}: expected {len(data)} integer '{layout.label_key}', got {label.dtype} {label.shape}"
            )
        if len(label) and (label.min() < 0 or label.max() >= num_classes):
            raise DatasetError(
                f"{where}: '{layout.label_key}' must lie in [0, {num_classes}) "
                f"for the {num_classes} classes of {layout.meta}"
            )
        # Each row is the red plane, then green, then blue, each 32x32 row-major.
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(label.astype(np.int64))
    return np.concatenate(images), np.concatenate(labels)
