"""One entry point: a dataset by name (with a root folder) or by path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .archive import is_archive
from .cifar import CIFAR10, CIFAR100, read_cifar10, read_cifar100
from .cifar10_jpeg import ARCHIVE_NAME as CIFAR10_JPEG_ARCHIVE
from .cifar10_jpeg import read_cifar10_jpeg
from .dataset import ImageDataset
from .errors import DatasetError
from .imagefolder import read_image_folder
from .npz import read_npz
from .sample import load_cifar10_sample
from .tinyimagenet import FOLDER as TINY_FOLDER
from .tinyimagenet import read_tiny_imagenet

DATASET_NAMES = (
    "cifar10-sample",
    "cifar10",
    "cifar100",
    "cifar10-jpeg",
    "tinyimagenet",
    "imagefolder",
    "npz",
)

# Names whose root is the dataset itself, with no sensible default location.
_NEEDS_ROOT = {"imagefolder", "npz"}


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
        name_or_path: one of ``DATASET_NAMES`` (case, ``-`` and ``_`` ignored: "CIFAR-10"
            works), or a path whose format is recognised (a CIFAR folder or tarball, a
            Tiny-ImageNet folder or zip, an image-folder tree or archive, an ``.npz``).
            The default is the bundled pixel-exact CIFAR-10 sample.
        root: where the named dataset is: the folder holding the official download (or the
            download itself); for "imagefolder" and "npz", the folder or file. Default
            :func:`default_data_root`.
        cache: keep decoded pixels in a cache so the next load is fast (decoding readers).
        cache_dir: cache location (default ``$EDLNET_CACHE`` or ``~/.cache/edlnet``).

    Raises:
        DatasetError: unknown name, missing or malformed files; the message names what was
            expected where.
    """
    key = _normalize(str(name_or_path))
    if key in _READERS:
        name, reader = _READERS[key]
        if root is None and name in _NEEDS_ROOT:
            raise DatasetError(f"load_dataset({name!r}) needs root=<path of the {name} dataset>")
        return reader(Path(root) if root is not None else default_data_root(), cache, cache_dir)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DatasetError(
            f"unknown dataset {str(name_or_path)!r}: expected one of {', '.join(DATASET_NAMES)} "
            "or the path of an existing dataset file or folder"
        )
    name = detect_format(path)
    return _READERS[_normalize(name)][1](path, cache, cache_dir)


def detect_format(path: Path) -> str:
    """The dataset name whose reader understands ``path`` (from names and layout only)."""
    lower = path.name.lower()
    if path.is_file():
        if lower.endswith(".npz"):
            return "npz"
        if is_archive(path):
            for marker, name in (
                (CIFAR10.archive, "cifar10"),
                (CIFAR100.archive, "cifar100"),
                (TINY_FOLDER, "tinyimagenet"),
                (CIFAR10_JPEG_ARCHIVE, "cifar10-jpeg"),
            ):
                if lower.startswith(marker.split(".")[0]):
                    return name
            return "imagefolder"
    elif path.is_dir():
        if path.name == CIFAR100.folder:  # holds files named train/test, not image folders
            return "cifar100"
        checks = (
            ("cifar10", (CIFAR10.folder, CIFAR10.archive, CIFAR10.train[0])),
            ("cifar100", (CIFAR100.folder, CIFAR100.archive)),
            ("tinyimagenet", (TINY_FOLDER, f"{TINY_FOLDER}.zip", "wnids.txt")),
            ("cifar10-jpeg", (CIFAR10_JPEG_ARCHIVE,)),
            ("imagefolder", ("train",)),
        )
        for name, markers in checks:
            if any((path / m).exists() for m in markers):
                return name
    raise DatasetError(
        f"cannot tell which dataset {path} holds: expected a CIFAR-10/100 folder or tarball "
        f"({CIFAR10.folder}, {CIFAR100.folder}), a Tiny-ImageNet folder ({TINY_FOLDER}), "
        "an image folder with train/ and test/, or an .npz"
    )


def _normalize(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_Reader = Callable[[Path, bool, "str | os.PathLike | None"], ImageDataset]

# name -> reader(root, cache, cache_dir). The sample is bundled and the npz reader has no
# decode step, so those two ignore the cache arguments.
_BY_NAME: dict[str, _Reader] = {
    "cifar10-sample": lambda root, cache, cache_dir: load_cifar10_sample(),
    "cifar10": lambda root, cache, cache_dir: read_cifar10(root, cache=cache, cache_dir=cache_dir),
    "cifar100": lambda root, cache, cache_dir: read_cifar100(root, cache=cache, cache_dir=cache_dir),
    "cifar10-jpeg": lambda root, cache, cache_dir: read_cifar10_jpeg(root, cache=cache, cache_dir=cache_dir),
    "tinyimagenet": lambda root, cache, cache_dir: read_tiny_imagenet(root, cache=cache, cache_dir=cache_dir),
    "imagefolder": lambda root, cache, cache_dir: read_image_folder(root, cache=cache, cache_dir=cache_dir),
    "npz": lambda root, cache, cache_dir: read_npz(root),
}
_READERS: dict[str, tuple[str, _Reader]] = {_normalize(n): (n, r) for n, r in _BY_NAME.items()}
