"""load_dataset: names, aliases, format detection and the errors a user sees."""

import pickle
import re

import numpy as np
import pytest
import torch

from edlnet.data import DATASET_NAMES, DatasetError, detect_format, load_dataset

torch.set_num_threads(1)


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(
        DatasetError, match="unknown dataset 'mnist': expected one of cifar10-sample, cifar10"
    ):
        load_dataset("mnist")
    assert set(DATASET_NAMES) >= {
        "cifar10-sample",
        "cifar10",
        "cifar100",
        "tinyimagenet",
        "imagefolder",
        "npz",
    }


def test_roots_required_and_defaulted(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match=r"load_dataset\('imagefolder'\) needs root="):
        load_dataset("imagefolder")
    monkeypatch.setenv("EDLNET_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match=re.escape(f"no CIFAR-100 batches in {tmp_path}")):
        load_dataset("cifar_100", cache=False)  # alias, default root from $EDLNET_DATA


def test_detect_format(tmp_path):
    (tmp_path / "c10" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "tiny" / "tiny-imagenet-200").mkdir(parents=True)
    (tmp_path / "folders" / "train").mkdir(parents=True)
    (tmp_path / "a.npz").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    assert detect_format(tmp_path / "c10") == "cifar10"
    assert detect_format(tmp_path / "tiny") == "tinyimagenet"
    assert detect_format(tmp_path / "folders") == "imagefolder"
    assert detect_format(tmp_path / "a.npz") == "npz"
    with pytest.raises(DatasetError, match="cannot tell which dataset"):
        load_dataset(tmp_path / "empty")


def test_path_to_cifar_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": np.full((1, 3072), 3, np.uint8), b"labels": [4]}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)]}, f, protocol=2)
    dataset = load_dataset(folder, cache=False)
    assert dataset.name == "CIFAR-10" and len(dataset.x_train) == 5 and dataset.y_test.tolist() == [4]
