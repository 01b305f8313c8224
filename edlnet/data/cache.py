"""Decode once: a uint8 ``.npz`` cache of decoded datasets, keyed by the source files' stats.

Decoding 60,000 JPEGs or unpickling a tarball takes seconds to minutes; loading the decoded
arrays back takes a fraction of a second. The cache key hashes the reader's kind, the absolute
source path and the size and modification time of every source file, so editing, adding or
removing a source file selects a new cache entry instead of serving stale pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from .dataset import ImageDataset

# Bump when a reader's output for the same files changes, so old entries are not reused.
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$EDLNET_CACHE``, else ``$XDG_CACHE_HOME/edlnet``, else ``~/.cache/edlnet``."""
    if os.environ.get("EDLNET_CACHE"):
        return Path(os.environ["EDLNET_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "edlnet"


def cache_file(kind: str, source: Path, files: Iterable[Path], cache_dir: Path) -> Path:
    """Path of the cache entry for ``source`` as made of ``files`` (all stat-ed now)."""
    digest = hashlib.sha256(f"{CACHE_VERSION}\0{kind}\0{source.resolve()}".encode())
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return cache_dir / f"{kind}-{digest.hexdigest()[:24]}.npz"


def load_or_decode(
    kind: str,
    source: Path,
    files: Iterable[Path],
    decode: Callable[[], ImageDataset],
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> ImageDataset:
    """Return the cached decode of ``source`` if it is current, else ``decode()`` and store it.

    Args:
        kind: reader name, part of the key and of the file name (e.g. ``"cifar10"``).
        source: the dataset root or archive the user gave.
        files: every file the decode reads; their sizes and mtimes key the entry.
        decode: builds the dataset from the source files.
        cache: ``False`` decodes every time and writes nothing.
        cache_dir: where entries live (default :func:`default_cache_dir`).

    A cache that cannot be written (read-only home, full disk) only costs speed: the decoded
    dataset is returned with a warning. An unreadable entry is decoded again and replaced.
    """
    if not cache:
        return decode()
    path = cache_file(kind, source, files, Path(cache_dir) if cache_dir else default_cache_dir())
    if path.is_file():
        try:
            return read_npz_cache(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            warnings.warn(f"ignoring unreadable dataset cache {path} ({error}); decoding again", stacklevel=2)
    dataset = decode()
    try:
        write_npz_cache(dataset, path)
    except OSError as error:
        warnings.warn(
            f"could not write dataset cache {path} ({error}); next load decodes again", stacklevel=2
        )
    return dataset


def write_npz_cache(dataset: ImageDataset, path: Path) -> None:
    """Write ``dataset`` (train and test splits) atomically as an uncompressed ``.npz``.

    Uncompressed because the point is load speed; atomic (temporary file, then rename) so a
    crash or a concurrent reader never sees half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "x_train": dataset.x_train.cpu().numpy(),
        "y_train": dataset.y_train.cpu().numpy(),
        "x_test": dataset.x_test.cpu().numpy(),
        "y_test": dataset.y_test.cpu().numpy(),
        "class_names": np.array(dataset.class_names, dtype=str),
        "name": np.array(dataset.name),
        "info": np.array(json.dumps(dict(dataset.info))),
    }
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_npz_cache(path: Path) -> ImageDataset:
    """Read an entry written by :func:`write_npz_cache`."""
    with np.load(path, allow_pickle=False) as data:
        return ImageDataset(
            name=str(data["name"]),
            x_train=torch.from_numpy(data["x_train"]),
            y_train=torch.from_numpy(data["y_train"]),
            x_test=torch.from_numpy(data["x_test"]),
            y_test=torch.from_numpy(data["y_test"]),
            class_names=tuple(str(c) for c in data["class_names"]),
            info=json.loads(str(data["info"])),
        )
