"""Image arrays in a ``.npz`` file, e.g. extra or synthetic training data.

Keys, in order of preference:

* ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test`` (the bundled sample's layout);
* ``x``, ``y`` (all training data, no test split), or ``image``, ``label`` (the layout of the
  published diffusion-model CIFAR-10 sets);

with uint8 images NHWC or NCHW (or ``(N, H, W)`` gray) and integer labels. An optional
``class_names`` string array names the classes; without it they are ``"0"``, ``"1"``, ...
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from .dataset import ImageDataset
from .errors import DatasetError
from .images import to_nchw_uint8

_KEY_SETS = (("x_train", "y_train"), ("x", "y"), ("image", "label"))


def read_npz(path: str | os.PathLike, *, name: str | None = None) -> ImageDataset:
    """Read an ``.npz`` of images and labels (see the module docstring for the keys).

    No decode cache: the file already holds arrays, and a copy of a large synthetic set
    would only double its disk use.

    Raises:
        DatasetError: if the file is missing or unreadable, keys are missing, pixels are not
            uint8 or labels do not match the images.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(
            f"no .npz file at {path}: expected arrays x (uint8 images, NHWC or NCHW) and y "
            "(integer labels), or x_train, y_train, x_test, y_test"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DatasetError(f"cannot read {path} as an .npz of arrays: {error}") from None
    for x_key, y_key in _KEY_SETS:
        if x_key in arrays and y_key in arrays:
            break
    else:
        raise DatasetError(
            f"{path} has keys {sorted(arrays)}: expected x and y (uint8 images and integer "
            "labels), or x_train, y_train (and x_test, y_test)"
        )
    x_train, y_train = _pair(arrays, x_key, y_key, path)
    if "x_test" in arrays and "y_test" in arrays:
        x_test, y_test = _pair(arrays, "x_test", "y_test", path)
    else:
        x_test = np.zeros((0, *x_train.shape[1:]), dtype=np.uint8)
        y_test = np.zeros(0, dtype=np.int64)
    if "class_names" in arrays:
        class_names = tuple(str(c) for c in np.asarray(arrays["class_names"]).ravel())
    else:
        top = max([int(y.max()) for y in (y_train, y_test) if len(y)], default=0)
        class_names = tuple(str(i) for i in range(top + 1))
    return ImageDataset(
        name=name or f"npz ({path.name})",
        x_train=torch.from_numpy(x_train),
        y_train=torch.from_numpy(y_train),
        x_test=torch.from_numpy(x_test),
        y_test=torch.from_numpy(y_test),
        class_names=class_names,
        info={"source": str(path), "pixels": "as stored"},
    )


def _pair(arrays: dict, x_key: str, y_key: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    x = to_nchw_uint8(arrays[x_key], f"key {x_key!r} of {path}")
    y = np.asarray(arrays[y_key])
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(
            f"key {y_key!r} of {path}: expected {len(x)} integer labels, got {y.dtype} {y.shape}"
        )
    return x, y.astype(np.int64)
