"""Image folders ``root/train/<class>/<image>`` and ``root/test/<class>/<image>``.

``root`` may also be a tar or zip archive with that layout (optionally under one top folder),
read without extracting. Classes are the sorted names of the train subfolders (the
torchvision ``ImageFolder`` convention, so labels match models trained with it); images within
a class are in file-name order. ``val`` stands in for ``test`` when there is no ``test``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .archive import is_archive, iter_archive
from .cache import load_or_decode
from .dataset import ImageDataset
from .errors import DatasetError
from .images import ImageSource, decode_images, is_image_name

# split -> class -> [(display name, source)]
Tree = dict[str, dict[str, list[tuple[str, ImageSource]]]]

_SPLITS = ("train", "test", "val")


def read_image_folder(
    root: str | os.PathLike,
    *,
    name: str | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> ImageDataset:
    """Read an image-folder dataset from a directory or an archive.

    Args:
        root: the folder holding ``train/`` and ``test/`` (or ``val/``), or an archive of it.
        name: dataset name for records (default ``"Image folder (<root name>)"``).
        cache: keep the decoded pixels in the cache (see :mod:`edlnet.data.cache`).
        cache_dir: cache location (default :func:`edlnet.data.cache.default_cache_dir`).

    Raises:
        DatasetError: if the layout is missing, a split has no images, a test class has no
            train folder, an image cannot be decoded, or image sizes differ.
    """
    root = Path(root).expanduser()
    name = name or f"Image folder ({root.name})"
    if is_archive(root):
        stamp = [root]
        tree: Tree | None = None  # listing an archive costs a full read: do it only on a miss
    elif root.is_dir():
        tree = _list_directory(root)
        # Class folders are stamped too: an empty new class folder changes the class list.
        stamp = [root / split / c for split, classes in tree.items() for c in classes]
        stamp += [src for c in tree.values() for items in c.values() for _, src in items]
    else:
        raise _layout_error(root)

    def decode() -> ImageDataset:
        return _assemble(tree if tree is not None else _list_archive(root), root, name)

    return load_or_decode("imagefolder", root, stamp, decode, cache=cache, cache_dir=cache_dir)


def _layout_error(root: Path, detail: str = "") -> DatasetError:
    return DatasetError(
        f"no image folders in {root}{detail}: expected {root}/train/<class>/<image> and "
        f"{root}/test/<class>/<image> (png, jpg, ...), or a tar/zip archive of them"
    )


def _list_directory(root: Path) -> Tree:
    tree: Tree = {}
    for split in _SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        classes = tree.setdefault(split, {})
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            files = sorted(p for p in class_dir.iterdir() if p.is_file() and is_image_name(p.name))
            classes[class_dir.name] = [(str(p), p) for p in files]
    return tree


def _list_archive(archive: Path) -> Tree:
    tree: Tree = {}
    prefixes = set()

    def select(member: str) -> bool:
        parts = member.split("/")
        return len(parts) >= 3 and parts[-3] in _SPLITS and is_image_name(member)

    for member, data in iter_archive(archive, select):
        parts = member.split("/")
        prefixes.add("/".join(parts[:-3]))
        items = tree.setdefault(parts[-3], {}).setdefault(parts[-2], [])
        items.append((f"{archive}:{member}", data))
    if len(prefixes) > 1:
        raise _layout_error(archive, f" (it holds several image-folder trees: {sorted(prefixes)})")
    for classes in tree.values():
        for items in classes.values():
            items.sort(key=lambda item: item[0])
    return tree


def _assemble(tree: Tree, root: Path, name: str) -> ImageDataset:
    test_split = "test" if "test" in tree else "val"
    train = tree.get("train", {})
    if not any(train.values()):
        raise _layout_error(root, " (no training images)")
    if not any(tree.get(test_split, {}).values()):
        raise _layout_error(root, " (no test images)")
    class_names = sorted(train)
    unknown = sorted(set(tree[test_split]) - set(class_names))
    if unknown:
        raise DatasetError(
            f"{root}: {test_split} classes {unknown} have no folder under {root}/train; "
            "every test class must also be a training class"
        )
    x_train, y_train = _decode_split(train, class_names)
    x_test, y_test = _decode_split(tree[test_split], class_names)
    if x_test.shape[2:] != x_train.shape[2:]:
        raise DatasetError(
            f"{root}: {test_split} images are {x_test.shape[3]}x{x_test.shape[2]} but train "
            f"images {x_train.shape[3]}x{x_train.shape[2]}; every image must have the same size"
        )
    info = {
        "source": str(root),
        "pixels": "decoded from image files",
        "order": "class, then file name",
    }
    if test_split == "val":
        info["test_split"] = "val"
    return ImageDataset(
        name=name,
        x_train=torch.from_numpy(x_train),
        y_train=torch.from_numpy(y_train),
        x_test=torch.from_numpy(x_test),
        y_test=torch.from_numpy(y_test),
        class_names=tuple(class_names),
        info=info,
    )


def _decode_split(
    classes: dict[str, list[tuple[str, ImageSource]]], class_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    items, labels = [], []
    for label, class_name in enumerate(class_names):
        found = classes.get(class_name, [])
        items.extend(found)
        labels.extend([label] * len(found))
    return decode_images(items), np.asarray(labels, dtype=np.int64)
