"""The .npz reader: layouts, keys and the errors it reports."""

import numpy as np
import pytest
import torch

from edlnet.data import DatasetError, load_dataset, read_npz

torch.set_num_threads(1)


def test_nhwc_and_nchw_give_the_same_tensor(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, size=(5, 6, 7, 3), dtype=np.uint8)
    y = np.array([0, 2, 1, 2, 0])
    np.savez(tmp_path / "a.npz", x=nhwc, y=y)
    np.savez_compressed(tmp_path / "b.npz", x=nhwc.transpose(0, 3, 1, 2), y=y.astype(np.int32))
    a, b = read_npz(tmp_path / "a.npz"), load_dataset(tmp_path / "b.npz")
    assert a.x_train.shape == (5, 3, 6, 7) and torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.x_train[1, 2, 3, 4], torch.tensor(nhwc[1, 3, 4, 2]))
    assert b.y_train.dtype == torch.int64 and b.y_train.tolist() == y.tolist()
    assert a.class_names == ("0", "1", "2") and len(a.x_test) == 0
    assert a.name == "npz (a.npz)"


def test_split_keys_class_names_and_gray(tmp_path):
    gray = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    np.savez(
        tmp_path / "s.npz",
        x_train=gray,
        y_train=np.array([1, 0]),
        x_test=gray[:1],
        y_test=np.array([1]),
        class_names=np.array(["cat", "dog"]),
    )
    dataset = load_dataset("npz", root=tmp_path / "s.npz")
    assert dataset.class_names == ("cat", "dog") and dataset.x_test.shape == (1, 3, 4, 4)
    assert torch.equal(dataset.x_train[:, 0], dataset.x_train[:, 2])  # gray repeated to RGB
    assert torch.equal(dataset.x_train[:, 1], torch.from_numpy(gray))


def test_diffusion_set_keys(tmp_path):
    np.savez(tmp_path / "1m.npz", image=np.zeros((2, 4, 4, 3), np.uint8), label=np.array([3, 9]))
    assert read_npz(tmp_path / "1m.npz").num_classes == 10


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.zeros((2, 4, 4, 3), np.uint8)}, r"has keys \['images'\]: expected x and y"),
        ({"x": np.zeros((2, 4, 4, 3), np.float32), "y": np.zeros(2, int)}, "expected uint8 pixels"),
        ({"x": np.zeros((2, 4, 4, 3), np.uint8), "y": np.zeros(3, int)}, "expected 2 integer labels"),
        ({"x": np.zeros((2, 4, 4, 3), np.uint8), "y": np.zeros(2)}, "expected 2 integer labels"),
        ({"x": np.zeros((2, 3, 4, 3), np.uint8), "y": np.zeros(2, int)}, "cannot tell channels"),
        ({"x": np.zeros((2, 4, 4, 3), np.uint8), "y": np.array([0, -1])}, r"labels must lie in \[0"),
    ],
)
def test_malformed_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=message):
        read_npz(tmp_path / "bad.npz")


def test_unreadable_or_missing_npz(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="cannot read .*junk.npz as an .npz"):
        read_npz(tmp_path / "junk.npz")
    with pytest.raises(DatasetError, match="no .npz file at .*nothere.npz: expected arrays x"):
        load_dataset("npz", root=tmp_path / "nothere.npz")
