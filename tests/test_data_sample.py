"""The bundled CIFAR-10 sample: size budget, contents, pixel equality with the exact subset."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from edlnet.data import CIFAR10_CLASSES, load_dataset, sample_official_indices, sample_path

torch.set_num_threads(1)

# The pixel-exact subset the sample was cut from, where $EDLNET_DATA points to a copy of it.
EXACT = Path(os.environ.get("EDLNET_DATA", "data")) / "cifar10-exact-subset.npz"


def test_sample_is_within_budget_and_documented():
    assert sample_path().is_file() and sample_path().stat().st_size <= 8_000_000
    assert (sample_path().parent / "README.md").is_file()


def test_sample_loads_as_default_dataset():
    dataset = load_dataset()
    assert dataset.name == "CIFAR-10 sample" and dataset.class_names == CIFAR10_CLASSES
    assert dataset.x_train.shape == (1800, 3, 32, 32) and dataset.x_test.shape == (1000, 3, 32, 32)
    assert dataset.x_train.dtype == torch.uint8 and dataset.y_test.dtype == torch.int64
    assert torch.bincount(dataset.y_train, minlength=10).min() > 100  # every class present
    train_index, test_index = sample_official_indices()
    assert train_index[:2].tolist() == [0, 1] and train_index[360] == 10000
    assert test_index.tolist() == list(range(1000))


@pytest.mark.skipif(not EXACT.is_file(), reason="the shared exact CIFAR-10 subset is not on this machine")
def test_sample_is_pixel_equal_to_the_exact_subset():
    dataset = load_dataset("cifar10-sample")
    train_index, test_index = sample_official_indices()
    with np.load(EXACT) as exact:
        prefix = int(exact["train_prefix_len_per_batch"])
        # Official index 10000 * b + j is row prefix * b + j of the subset.
        rows = (train_index // 10000) * prefix + train_index % 10000
        x_train = torch.from_numpy(exact["x_train_batchprefixes"][rows]).permute(0, 3, 1, 2)
        x_test = torch.from_numpy(exact["x_test_first"][test_index]).permute(0, 3, 1, 2)
        assert torch.equal(dataset.x_train, x_train)
        assert torch.equal(dataset.y_train, torch.from_numpy(exact["y_train_batchprefixes"][rows]).long())
        assert torch.equal(dataset.x_test, x_test)
        assert torch.equal(dataset.y_test, torch.from_numpy(exact["y_test_first"][test_index]).long())
