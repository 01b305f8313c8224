"""CIFAR-10/100 readers on tiny files written in the official pickle layout."""

import os
import struct
import tarfile
import warnings

import numpy as np
import pytest
import torch
from dataset_files import dump_pickle, write_cifar10, write_cifar100

from edlnet.data import DatasetError, load_dataset, read_cifar10, read_cifar100

torch.set_num_threads(1)


def _check(dataset, expected):
    x_train, y_train, x_test, y_test = expected
    assert dataset.x_train.dtype == torch.uint8 and dataset.y_train.dtype == torch.int64
    assert torch.equal(dataset.x_train, torch.from_numpy(x_train))
    assert torch.equal(dataset.y_train, torch.from_numpy(y_train).long())
    assert torch.equal(dataset.x_test, torch.from_numpy(x_test))
    assert torch.equal(dataset.y_test, torch.from_numpy(y_test).long())


def test_cifar10_folder_parent_and_batches_dir(tmp_path):
    expected = write_cifar10(tmp_path / "data")
    for root in (tmp_path / "data", tmp_path / "data" / "cifar-10-batches-py"):
        dataset = read_cifar10(root, cache=False)
        _check(dataset, expected)
        assert dataset.name == "CIFAR-10"
        assert dataset.class_names[:2] == ("airplane", "automobile") and dataset.num_classes == 10


def test_cifar10_pixel_layout_is_planar_rgb(tmp_path):
    x_train, *_ = write_cifar10(tmp_path)
    dataset = read_cifar10(tmp_path, cache=False)
    raw = dataset.x_train[0].numpy()
    # Row layout: 1024 red values, then green, then blue, each 32x32 row-major.
    assert raw[0, 0, 1] == x_train[0].reshape(-1)[1]
    assert raw[1, 2, 3] == x_train[0].reshape(-1)[1024 + 2 * 32 + 3]


def test_cifar10_tarball(tmp_path):
    expected = write_cifar10(tmp_path / "src")
    archive = tmp_path / "dl" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    _check(read_cifar10(archive, cache=False), expected)
    _check(read_cifar10(archive.parent, cache=False), expected)  # folder holding the tarball
    _check(load_dataset(archive, cache=False), expected)  # recognised by name


def test_cifar100_fine_labels(tmp_path):
    expected = write_cifar100(tmp_path)
    dataset = read_cifar100(tmp_path, cache=False)
    _check(dataset, expected)
    assert dataset.num_classes == 100 and dataset.class_names[7] == "class7"
    _check(load_dataset("CIFAR-100", root=tmp_path, cache=False), expected)
    _check(load_dataset(tmp_path / "cifar-100-python", cache=False), expected)


def test_missing_cifar10_names_expected_files_and_url(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", root=tmp_path, cache=False)
    message = str(info.value)
    assert f"no CIFAR-10 batches in {tmp_path}" in message
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert isinstance(info.value, ValueError)


def test_incomplete_cifar10_names_missing_batch(tmp_path):
    write_cifar10(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(DatasetError, match="missing data_batch_3"):
        read_cifar10(tmp_path, cache=False)


def test_malformed_batches_raise_dataset_error(tmp_path):
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_2").write_bytes(b"not a pickle at all")
    with pytest.raises(DatasetError, match="data_batch_2 is not a CIFAR pickle"):
        read_cifar10(tmp_path, cache=False)
    dump_pickle(folder / "data_batch_2", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DatasetError, match=r"data_batch_2: expected 'data' as uint8 \(N, 3072\)"):
        read_cifar10(tmp_path, cache=False)
    dump_pickle(folder / "data_batch_2", {b"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(DatasetError, match="data_batch_2 has no 'labels' entry"):
        read_cifar10(tmp_path, cache=False)
    dump_pickle(folder / "data_batch_2", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    with pytest.raises(DatasetError, match=r"must lie in \[0, 10\)"):
        read_cifar10(tmp_path, cache=False)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_foreign_globals_is_refused(tmp_path):
    write_cifar10(tmp_path)
    dump_pickle(tmp_path / "cifar-10-batches-py" / "batches.meta", {b"label_names": _Evil()})
    with pytest.raises(DatasetError, match="refusing to load global"):
        read_cifar10(tmp_path, cache=False)


def test_tarball_without_batches_is_rejected(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "x.txt", arcname="x.txt")
    with pytest.raises(DatasetError, match="lacks cifar-10-batches-py/data_batch_1"):
        read_cifar10(archive, cache=False)
    archive.write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(DatasetError, match="cannot read archive"):
        read_cifar10(archive, cache=False)


def _python2_pickle(data, labels):
    """A dict pickled as Python 2's cPickle (protocol 2) wrote the official files: str keys
    as SHORT_BINSTRING and the array via numpy.core.multiarray._reconstruct (numpy 1)."""
    n, m = data.shape
    out = b"\x80\x02}q\x00(U\x04data"
    out += b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87Rq\x03("
    out += b"K\x01M" + struct.pack("<H", n) + b"M" + struct.pack("<H", m) + b"\x86"
    out += b"cnumpy\ndtype\nq\x04U\x02u1K\x00K\x01\x87Rq\x05(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89T" + struct.pack("<I", data.nbytes) + data.tobytes() + b"tb"
    out += b"U\x06labels](" + b"".join(b"K" + bytes([v]) for v in labels) + b"eu."
    return out


def test_python2_pickles_of_the_official_release(tmp_path):
    expected = write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    x_train, y_train, x_test, y_test = expected
    for i in range(5):
        rows = slice(3 * i, 3 * i + 3)
        (folder / f"data_batch_{i + 1}").write_bytes(
            _python2_pickle(x_train[rows].reshape(3, -1), y_train[rows].tolist())
        )
    (folder / "test_batch").write_bytes(_python2_pickle(x_test.reshape(len(x_test), -1), y_test.tolist()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy 2 must not warn about the numpy.core name
        _check(read_cifar10(tmp_path, cache=False), expected)
