"""One entry point: a dataset by name (with a root folder) or by path, as the dataset table
(:mod:`edlnet.data.table`) describes it."""

from __future__ import annotations

import os
from pathlib import Path

from .dataset import ImageDataset
from .detect import detect_format
from .errors import DatasetError
from .table import DATASET_NAMES, find_dataset


def default_data_root() -> Path:
    """``$EDLNET_DATA`` if set, else ``./data``: where named datasets are looked for."""
    return Path(os.environ.get("EDLNET_DATA", "data")).expanduser()


def load_dataset(
    name_or_path: str | os.PathLike = "cifar10-sample",
    root: str | os.PathLike | None = None,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> ImageDataset:
    """Load a dataset as uint8 tensors.

    Args:
        name_or_path: a name of the dataset table, ``DATASET_NAMES`` (case, ``-`` and ``_``
            ignored: "CIFAR-10" works), or a path whose format the table's detection rules
            recognise (a CIFAR folder or tarball, a Tiny-ImageNet folder or zip, an
            image-folder tree or archive, an ``.npz``). The default is the bundled
            pixel-exact CIFAR-10 sample.
        root: where the named dataset is: the folder holding the official download (or the
            download itself); for datasets that are their root ("imagefolder", "npz"), the
            folder or file. Default :func:`default_data_root`.
        cache: keep decoded pixels in a cache so the next load is fast (decoding readers).
        cache_dir: cache location (default ``$EDLNET_CACHE`` or ``~/.cache/edlnet``).

    Raises:
        DatasetError: unknown name, missing or malformed files; the message names what was
            expected where.
    """
    entry = find_dataset(str(name_or_path))
    if entry is not None:
        if root is None and entry.needs_root:
            raise DatasetError(f"load_dataset({entry.name!r}) needs root=<path of the {entry.name} dataset>")
        where = Path(root) if root is not None else default_data_root()
        return entry.read(where, cache=cache, cache_dir=cache_dir)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DatasetError(
            f"unknown dataset {str(name_or_path)!r}: expected one of {', '.join(DATASET_NAMES)} "
            "or the path of an existing dataset file or folder"
        )
    entry = find_dataset(detect_format(path))
    assert entry is not None  # detect_format returns names of the table
    return entry.read(path, cache=cache, cache_dir=cache_dir)
