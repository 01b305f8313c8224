"""ImageDataset: validation of contents, seeded validation split, subset and device moves."""

import pytest
import torch

from edlnet.data import DatasetError, ImageDataset, validation_indices

torch.set_num_threads(1)


def _dataset(n=40, classes=4):
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()
    y = torch.arange(n) % classes
    y[:8] = 0  # unbalanced on purpose
    return ImageDataset("toy", x, y, x[:5], y[:5], tuple("abcd"[:classes]))


def test_split_is_seeded_disjoint_and_complete():
    dataset = _dataset()
    a = dataset.split_validation(10, seed=3)
    b = dataset.split_validation(10, seed=3)
    c = dataset.split_validation(10, seed=4)
    assert torch.equal(a.x_val, b.x_val) and not torch.equal(a.x_val, c.x_val)
    ids_train = a.x_train[:, 0, 0, 0].tolist()
    ids_val = a.x_val[:, 0, 0, 0].tolist()
    assert len(ids_val) == 10 and len(ids_train) == 30
    assert sorted(ids_train + ids_val) == list(range(40))
    assert ids_train == sorted(ids_train) and ids_val == sorted(ids_val)  # release order kept
    assert torch.equal(a.y_val, dataset.y_train[a.x_val[:, 0, 0, 0].long()])
    assert torch.equal(a.x_test, dataset.x_test) and "seed 3" in a.info["validation"]


def test_stratified_quotas_follow_class_shares():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    _, val = validation_indices(labels, 0.2, seed=0)
    assert torch.bincount(labels[val]).tolist() == [12, 6, 2]
    _, val = validation_indices(labels, 7, seed=1)  # 4.2, 2.1, 0.7 -> largest remainder to class 2
    assert torch.bincount(labels[val], minlength=3).tolist() == [4, 2, 1]
    _, plain = validation_indices(labels, 7, seed=1, stratified=False)
    assert len(plain) == 7


def test_split_argument_errors():
    dataset = _dataset()
    with pytest.raises(ValueError, match="fractional validation size"):
        dataset.split_validation(1.5)
    with pytest.raises(ValueError, match="already has a validation split"):
        dataset.split_validation(5).split_validation(5)


def test_subset_to_and_repr():
    dataset = _dataset().subset(n_train=6, n_test=2).to("cpu")
    assert len(dataset.x_train) == 6 and len(dataset.y_test) == 2
    assert dataset.image_shape == (3, 2, 2) and dataset.num_classes == 4
    assert "train=6" in repr(dataset) and "test=2" in repr(dataset)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"x_train": torch.zeros(2, 3, 2, 2)}, "train images must be uint8"),
        ({"y_train": torch.zeros(3, dtype=torch.int64)}, "train labels must be int64 of shape \\(2,\\)"),
        ({"y_test": torch.tensor([5])}, r"test labels must lie in \[0, 2\)"),
        ({"x_test": torch.zeros(1, 3, 4, 4, dtype=torch.uint8)}, "test images are"),
        ({"class_names": ()}, "no class names"),
    ],
)
def test_invalid_contents_raise_dataset_error(change, message):
    fields = dict(
        name="toy",
        x_train=torch.zeros(2, 3, 2, 2, dtype=torch.uint8),
        y_train=torch.tensor([0, 1]),
        x_test=torch.zeros(1, 3, 2, 2, dtype=torch.uint8),
        y_test=torch.tensor([1]),
        class_names=("a", "b"),
    )
    fields.update(change)
    with pytest.raises(DatasetError, match=message):
        ImageDataset(**fields)
