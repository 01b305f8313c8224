"""Contract of the dataset table: every dataset loads by name from files in its standard
layout, fits its record (classes, image size), and its path is recognised and loads the same.

A new dataset of the table needs one writer in WRITERS (files from tests/dataset_files.py or
written here); ``test_every_dataset_has_a_writer`` fails until it has one."""

import tarfile

import numpy as np
import pytest
import torch
from dataset_files import write_cifar10, write_cifar100, write_cifar_jpeg, write_folders, write_tiny

from edlnet.data import DATASET_NAMES, DATASETS, DatasetError, detect_format, find_dataset, load_dataset

torch.set_num_threads(1)


def _cifar10(tmp_path):
    write_cifar10(tmp_path)
    return tmp_path


def _cifar100(tmp_path):
    write_cifar100(tmp_path)
    return tmp_path


def _tinyimagenet(tmp_path):
    # The whole class list (one image each), so the record's 200 classes can be checked.
    wnids = [f"n{i:08d}" for i in range(200)]
    write_tiny(tmp_path, train_per_class=1, wnids=wnids, val=[("val_0.JPEG", wnids[7])], size=64)
    return tmp_path


def _cifar10_jpeg(tmp_path):
    write_cifar_jpeg(tmp_path / "tree", {"train": 1, "test": 1}, size=32)
    with tarfile.open(tmp_path / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(tmp_path / "tree" / split, arcname=split)
    return tmp_path


def _imagefolder(tmp_path):
    write_folders(tmp_path)
    return tmp_path


def _npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "extra.npz"
    np.savez(path, x=rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8), y=np.array([0, 2, 1, 0]))
    return path


# dataset name -> writer(tmp_path) returning the root to load from (None: bundled, no files)
WRITERS = {
    "cifar10-sample": lambda tmp_path: None,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "tinyimagenet": _tinyimagenet,
    "cifar10-jpeg": _cifar10_jpeg,
    "imagefolder": _imagefolder,
    "npz": _npz,
}


def test_every_dataset_has_a_writer():
    missing = sorted(set(DATASET_NAMES) - set(WRITERS))
    assert not missing, f"datasets {missing} of the table have no writer in WRITERS of {__file__}"
    assert len(set(DATASET_NAMES)) == len(DATASETS)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_dataset_loads_by_name_and_fits_its_record(name, tmp_path):
    entry = find_dataset(name)
    assert entry is not None and entry.name == name
    assert find_dataset(name.upper().replace("-", "_")) is entry  # case, - and _ ignored
    root = WRITERS[name](tmp_path)
    data = load_dataset(name, root, cache=False)
    assert data.x_train.dtype == torch.uint8 and len(data.x_train) and data.y_train.dtype == torch.int64
    if entry.num_classes is not None:
        assert data.num_classes == entry.num_classes
    if entry.image_size is not None:
        assert data.image_shape == entry.image_size
    assert entry.description and entry.labels
    if entry.needs_root:
        with pytest.raises(DatasetError, match=rf"load_dataset\('{name}'\) needs root="):
            load_dataset(name)


@pytest.mark.parametrize("name", [e.name for e in DATASETS if e.detect.describe()])
def test_dataset_path_is_recognised_and_loads_the_same(name, tmp_path):
    root = WRITERS[name](tmp_path)
    assert detect_format(root) == name
    by_name = load_dataset(name, root, cache=False)
    by_path = load_dataset(root, cache=False)
    assert by_path.name == by_name.name and by_path.class_names == by_name.class_names
    for split in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(by_path, split), getattr(by_name, split))


def test_unrecognised_path_lists_every_layout(tmp_path):
    with pytest.raises(DatasetError, match="cannot tell which dataset") as info:
        detect_format(tmp_path)
    for entry in DATASETS:
        if entry.detect.describe():
            assert f"{entry.name} ({entry.detect.describe()})" in str(info.value)


def test_datasets_command_prints_the_table(capsys):
    from edlnet.cli import main

    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for entry in DATASETS:
        row = next(line for line in lines if line.startswith(f"{entry.name} "))
        assert entry.description in row
        if entry.num_classes is not None:
            assert f"{entry.num_classes} classes" in row
