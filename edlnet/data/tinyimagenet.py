"""Tiny-ImageNet (200 classes, 64x64) in the layout of ``tiny-imagenet-200.zip``.

Read: ``wnids.txt`` (the 200 class ids), ``train/<wnid>/images/*.JPEG`` and
``val/images/*`` labelled by ``val/val_annotations.txt`` (``file<TAB>wnid<TAB>box...``). The
validation set serves as the test set, as in the literature (the official test set has no
labels). Classes are the sorted wnids, i.e. the labels ``ImageFolder(train/)`` would give.
``root`` may be the extracted folder, its parent, or the zip/tar archive itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from .archive import is_archive, iter_archive
from .cache import load_or_decode
from .dataset import ImageDataset
from .errors import DatasetError
from .images import ImageSource, decode_images, is_image_name

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
FOLDER = "tiny-imagenet-200"

# Relative paths the reader needs, possibly under one top folder inside an archive.
_MEMBER = re.compile(
    r"^(?:.*/)?(wnids\.txt|val/val_annotations\.txt|val/images/[^/]+|train/[^/]+/images/[^/]+)$"
)


def read_tiny_imagenet(
    root: str | os.PathLike, *, cache: bool = True, cache_dir: str | os.PathLike | None = None
) -> ImageDataset:
    """Read Tiny-ImageNet from a folder or archive (see the module docstring).

    Raises:
        DatasetError: naming the missing file and the download URL, or the malformed line.
    """
    root = Path(root).expanduser()
    location = _locate(root)
    if is_archive(location):
        files: dict[str, ImageSource] | None = None
        stamp = [location]
    else:
        files = _list_directory(location)
        stamp = [src for src in files.values() if isinstance(src, Path)]

    def decode() -> ImageDataset:
        return _assemble(files if files is not None else _list_archive(location), location)

    return load_or_decode("tinyimagenet", location, stamp, decode, cache=cache, cache_dir=cache_dir)


def _locate(root: Path) -> Path:
    if is_archive(root):
        return root
    for candidate in (root / FOLDER, root):
        if (candidate / "wnids.txt").is_file():
            return candidate
    if (root / f"{FOLDER}.zip").is_file():
        return root / f"{FOLDER}.zip"
    raise DatasetError(
        f"no Tiny-ImageNet in {root}: expected {root / FOLDER}/wnids.txt with "
        "train/<wnid>/images/*.JPEG, val/images/ and val/val_annotations.txt; "
        f"download {URL} and extract it there"
    )


def _list_directory(location: Path) -> dict[str, ImageSource]:
    files: dict[str, ImageSource] = {}
    for name in ("wnids.txt", "val/val_annotations.txt"):
        if (location / name).is_file():
            files[name] = location / name
    train = location / "train"
    for class_dir in sorted(train.iterdir()) if train.is_dir() else []:
        images = class_dir / "images"
        for path in sorted(images.iterdir()) if images.is_dir() else []:
            files[f"train/{class_dir.name}/images/{path.name}"] = path
    val = location / "val" / "images"
    for path in sorted(val.iterdir()) if val.is_dir() else []:
        files[f"val/images/{path.name}"] = path
    return files


def _list_archive(archive: Path) -> dict[str, ImageSource]:
    def select(member: str) -> bool:
        return _MEMBER.match(member) is not None

    files: dict[str, ImageSource] = {}
    for member, data in iter_archive(archive, select):
        match = _MEMBER.match(member)
        assert match is not None  # select() only lets matching members through
        files[match.group(1)] = data
    return files


def _text(files: dict[str, ImageSource], name: str, location: Path) -> str:
    if name not in files:
        raise DatasetError(
            f"incomplete Tiny-ImageNet in {location}: missing {name}; download {URL} and extract it"
        )
    source = files[name]
    return (source if isinstance(source, bytes) else source.read_bytes()).decode("utf-8")


def _assemble(files: dict[str, ImageSource], location: Path) -> ImageDataset:
    lines = _text(files, "wnids.txt", location).splitlines()
    wnids = sorted({line.strip() for line in lines if line.strip()})
    label_of = {w: i for i, w in enumerate(wnids)}

    train_items, train_labels = [], []
    for wnid in wnids:
        prefix = f"train/{wnid}/images/"
        names = sorted(n for n in files if n.startswith(prefix) and is_image_name(n))
        if not names:
            raise DatasetError(
                f"incomplete Tiny-ImageNet in {location}: no images in {prefix} for class {wnid} of wnids.txt"
            )
        train_items += [(f"{location}/{n}", files[n]) for n in names]
        train_labels += [label_of[wnid]] * len(names)

    test_items, test_labels = [], []
    annotations = "val/val_annotations.txt"
    for number, line in enumerate(_text(files, annotations, location).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 2 or fields[1] not in label_of:
            raise DatasetError(
                f"{location}/{annotations} line {number}: expected '<file> <wnid> ...' with a "
                f"wnid from wnids.txt, got {line.strip()!r}"
            )
        name = f"val/images/{fields[0]}"
        if name not in files:
            raise DatasetError(
                f"{location}/{annotations} line {number} names {fields[0]}, "
                f"missing from {location}/val/images"
            )
        test_items.append((f"{location}/{name}", files[name]))
        test_labels.append(label_of[fields[1]])

    if not test_items:
        raise DatasetError(f"{location}/{annotations} lists no validation images")
    x_train, x_test = decode_images(train_items), decode_images(test_items)
    if x_test.shape[2:] != x_train.shape[2:]:
        raise DatasetError(
            f"{location}: val images are {x_test.shape[3]}x{x_test.shape[2]}, "
            f"train images {x_train.shape[3]}x{x_train.shape[2]}"
        )
    return ImageDataset(
        name="Tiny-ImageNet",
        x_train=torch.from_numpy(x_train),
        y_train=torch.tensor(train_labels, dtype=torch.int64),
        x_test=torch.from_numpy(x_test),
        y_test=torch.tensor(test_labels, dtype=torch.int64),
        class_names=tuple(wnids),
        info={
            "source": str(location),
            "pixels": "decoded from the release's JPEG files",
            "test_split": "val (labelled by val/val_annotations.txt)",
        },
    )
