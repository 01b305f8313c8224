"""Decode-once cache: round trip, invalidation on change, recovery from a bad entry."""

import os
import pickle

import numpy as np
import pytest
import torch

from edlnet.data import ImageDataset, read_cifar10
from edlnet.data.cache import cache_file, load_or_decode

torch.set_num_threads(1)


def _dataset(value=7):
    x = torch.full((2, 3, 4, 4), value, dtype=torch.uint8)
    return ImageDataset("toy", x, torch.tensor([0, 1]), x[:1], torch.tensor([1]), ("a", "b"), info={"k": "v"})


def test_round_trip_and_invalidation(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"one")
    calls = []

    def decode():
        calls.append(1)
        return _dataset(len(calls))

    first = load_or_decode("toy", source, [source], decode, cache_dir=tmp_path / "c")
    again = load_or_decode("toy", source, [source], decode, cache_dir=tmp_path / "c")
    assert len(calls) == 1  # second load served from the cache
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert again.name == "toy" and again.class_names == ("a", "b") and again.info == {"k": "v"}

    source.write_bytes(b"two!")  # new size (and mtime): a new entry, decoded again
    os.utime(source, ns=(1, 1))
    changed = load_or_decode("toy", source, [source], decode, cache_dir=tmp_path / "c")
    assert len(calls) == 2 and int(changed.x_train[0, 0, 0, 0]) == 2
    assert len(list((tmp_path / "c").glob("toy-*.npz"))) == 2
    assert not list((tmp_path / "c").glob("*.tmp"))  # atomic write left no temporary


def test_unreadable_entry_is_decoded_again(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"one")
    entry = cache_file("toy", source, [source], tmp_path)
    entry.write_bytes(b"corrupt")
    with pytest.warns(UserWarning, match="unreadable dataset cache"):
        dataset = load_or_decode("toy", source, [source], _dataset, cache_dir=tmp_path)
    assert int(dataset.x_train[0, 0, 0, 0]) == 7
    assert load_or_decode("toy", source, [source], lambda: 1 / 0, cache_dir=tmp_path).name == "toy"


def test_cifar_reader_uses_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
            pickle.dump({b"data": data, b"labels": [1, 2]}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)]}, f, protocol=2)
    first = read_cifar10(tmp_path, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr("edlnet.data.cifar._assemble", fail)
    second = read_cifar10(tmp_path, cache_dir=tmp_path / "cache")
    assert torch.equal(first.x_train, second.x_train) and second.class_names == first.class_names
