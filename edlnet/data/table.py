"""The dataset table: one record per dataset that :func:`edlnet.data.load_dataset` knows by
name, read by the loader, by :func:`edlnet.data.detect_format` and by ``edlnet datasets``.

Add a dataset: write its reader (copy :mod:`edlnet.data.tinyimagenet`), then one
:class:`~edlnet.data.entry.DatasetEntry` below. The order of the table is the order in which
paths are matched: specific layouts first, the generic image folder and ``.npz`` last.
"""

from __future__ import annotations

import os
from pathlib import Path

from .cifar import CIFAR10, CIFAR100, read_cifar10, read_cifar100
from .cifar10_jpeg import ARCHIVE_NAME as CIFAR10_JPEG_ARCHIVE
from .cifar10_jpeg import read_cifar10_jpeg
from .dataset import ImageDataset
from .entry import DatasetEntry, Detection
from .imagefolder import read_image_folder
from .npz import read_npz
from .sample import load_cifar10_sample
from .tinyimagenet import FOLDER as TINY_FOLDER
from .tinyimagenet import read_tiny_imagenet

CIFAR_IMAGE = (3, 32, 32)


def _archive_stem(file_name: str) -> str:
    """``cifar-10-python.tar.gz`` -> ``cifar-10-python``: what a renamed download still starts with."""
    return file_name.split(".")[0]


def _read_sample(root: Path, *, cache: bool, cache_dir: str | os.PathLike | None) -> ImageDataset:
    # Bundled with the package and stored as arrays: no root, nothing to decode or cache.
    return load_cifar10_sample()


def _read_npz(root: Path, *, cache: bool, cache_dir: str | os.PathLike | None) -> ImageDataset:
    # The file already holds arrays; a cached copy would only double its disk use.
    return read_npz(root)


DATASETS: tuple[DatasetEntry, ...] = (
    DatasetEntry(
        name="cifar10-sample",
        read=_read_sample,
        description="bundled pixel-exact CIFAR-10 sample: 1,800 training and 1,000 test images",
        num_classes=10,
        image_size=CIFAR_IMAGE,
        labels="the CIFAR-10 classes, airplane ... truck",
    ),
    DatasetEntry(
        name="cifar10",
        read=read_cifar10,
        description=f"CIFAR-10, official python pickles ({CIFAR10.folder}/ or {CIFAR10.archive})",
        num_classes=10,
        image_size=CIFAR_IMAGE,
        labels="the CIFAR-10 classes of batches.meta",
        detect=Detection(
            markers=(CIFAR10.folder, CIFAR10.archive, CIFAR10.train[0]),
            archive_prefixes=(_archive_stem(CIFAR10.archive),),
        ),
    ),
    DatasetEntry(
        name="cifar100",
        read=read_cifar100,
        description=f"CIFAR-100, official python pickles ({CIFAR100.folder}/ or {CIFAR100.archive})",
        num_classes=100,
        image_size=CIFAR_IMAGE,
        labels="the 100 fine labels of meta",
        detect=Detection(
            folder_names=(CIFAR100.folder,),
            markers=(CIFAR100.folder, CIFAR100.archive),
            archive_prefixes=(_archive_stem(CIFAR100.archive),),
        ),
    ),
    DatasetEntry(
        name="tinyimagenet",
        read=read_tiny_imagenet,
        description=f"Tiny-ImageNet ({TINY_FOLDER}/ or its zip); test set: the labelled val split",
        num_classes=200,
        image_size=(3, 64, 64),
        labels="index into the sorted wnids of wnids.txt",
        detect=Detection(
            markers=(TINY_FOLDER, f"{TINY_FOLDER}.zip", "wnids.txt"),
            archive_prefixes=(TINY_FOLDER,),
        ),
    ),
    DatasetEntry(
        name="cifar10-jpeg",
        read=read_cifar10_jpeg,
        description=f"CIFAR-10 as JPEG class folders ({CIFAR10_JPEG_ARCHIVE}); not pixel-exact",
        num_classes=10,
        image_size=CIFAR_IMAGE,
        labels="the CIFAR-10 classes, airplane ... truck",
        detect=Detection(
            markers=(CIFAR10_JPEG_ARCHIVE,),
            archive_prefixes=(_archive_stem(CIFAR10_JPEG_ARCHIVE),),
        ),
    ),
    DatasetEntry(
        name="imagefolder",
        read=read_image_folder,
        description="image folders train/<class>/<image> and test/<class>/<image>, or an archive of them",
        num_classes=None,
        image_size=None,
        labels="index into the sorted train/ class folder names",
        detect=Detection(markers=("train",), any_archive=True),
        needs_root=True,
    ),
    DatasetEntry(
        name="npz",
        read=_read_npz,
        description="arrays in an .npz: x_train, y_train (x_test, y_test), or x, y, or image, label",
        num_classes=None,
        image_size=None,
        labels="as stored; named by its class_names array, else 0, 1, ...",
        detect=Detection(file_suffixes=(".npz",)),
        needs_root=True,
    ),
)

DATASET_NAMES: tuple[str, ...] = tuple(entry.name for entry in DATASETS)


def normalize_name(name: str) -> str:
    """Case, ``-`` and ``_`` ignored: "CIFAR-10", "cifar_10" and "cifar10" are one name."""
    return name.lower().replace("-", "").replace("_", "")


_BY_KEY = {normalize_name(entry.name): entry for entry in DATASETS}
if len(_BY_KEY) != len(DATASETS):  # a programming error in the table above, caught at import
    raise RuntimeError(f"two datasets of the table share a normalized name: {DATASET_NAMES}")


def find_dataset(name: str) -> DatasetEntry | None:
    """The table's record for ``name`` (as :func:`normalize_name` reads it), or ``None``."""
    return _BY_KEY.get(normalize_name(name))
