"""Datasets as on-device uint8 tensors, batched augmentation, and seeded sharded batches.

Typical use::

    from edlnet.data import load_dataset, BatchIterator, crop_flip

    data = load_dataset("cifar10-sample").to(device)          # or "cifar10", root="~/data"
    data = data.split_validation(200, seed=0)
    train = BatchIterator(data.x_train, data.y_train, 128, seed=0, augment=crop_flip)
    for x, y in train:                                        # float in [0, 1]
        ...

Readers accept the standard downloads (CIFAR-10/100 python pickles or their tarballs,
Tiny-ImageNet, image folders, ``.npz``), decode once into a cache, and raise
:class:`DatasetError` naming what was expected where. Every named dataset is one record of
the dataset table, :data:`DATASETS` (:mod:`edlnet.data.table`): adding a dataset is a reader
module plus one record there.
"""

from .augment import crop_flip, cutout, cutout_at, flip_where, random_crop, random_flip, shift_crop
from .cache import default_cache_dir
from .cifar import read_cifar10, read_cifar100
from .cifar10_jpeg import CIFAR10_CLASSES, read_cifar10_jpeg
from .dataset import ImageDataset
from .detect import detect_format
from .entry import DatasetEntry, Detection
from .errors import DatasetError
from .imagefolder import read_image_folder
from .load import default_data_root, load_dataset
from .loader import BatchIterator, to_float
from .mixup import mixup, sample_beta
from .npz import read_npz
from .sample import load_cifar10_sample, sample_official_indices, sample_path
from .split import validation_indices
from .table import DATASET_NAMES, DATASETS, find_dataset
from .tinyimagenet import read_tiny_imagenet

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "DATASET_NAMES",
    "BatchIterator",
    "DatasetEntry",
    "DatasetError",
    "Detection",
    "ImageDataset",
    "crop_flip",
    "cutout",
    "cutout_at",
    "default_cache_dir",
    "default_data_root",
    "detect_format",
    "find_dataset",
    "flip_where",
    "load_cifar10_sample",
    "load_dataset",
    "mixup",
    "random_crop",
    "random_flip",
    "read_cifar10",
    "read_cifar10_jpeg",
    "read_cifar100",
    "read_image_folder",
    "read_npz",
    "read_tiny_imagenet",
    "sample_beta",
    "sample_official_indices",
    "sample_path",
    "shift_crop",
    "to_float",
    "validation_indices",
]
