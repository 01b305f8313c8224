"""Image-folder, CIFAR-10 (JPEG) and Tiny-ImageNet readers on tiny trees (tests/dataset_files.py)."""

import re
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from dataset_files import random_image, write_cifar_jpeg, write_folders, write_tiny
from PIL import Image

from edlnet.data import (
    DatasetError,
    load_dataset,
    read_cifar10_jpeg,
    read_image_folder,
    read_tiny_imagenet,
)

torch.set_num_threads(1)


def _check_folder(dataset, expected):
    names = dataset.class_names
    for split, x, y in (
        ("train", dataset.x_train, dataset.y_train),
        ("test", dataset.x_test, dataset.y_test),
    ):
        assert x.dtype == torch.uint8 and x.shape[1] == 3 and y.dtype == torch.int64
        assert [names[i] for i in y.tolist()] == [cls for cls, _ in expected[split]]
        want = np.stack([p.transpose(2, 0, 1) for _, p in expected[split]])
        assert torch.equal(x, torch.from_numpy(want))


def test_image_folder_directory_exact(tmp_path):
    expected = write_folders(tmp_path)
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not an image")  # ignored
    dataset = read_image_folder(tmp_path, cache=False)
    assert dataset.class_names == ("ant", "cat")  # sorted, as torchvision's ImageFolder
    _check_folder(dataset, expected)


def test_image_folder_from_tar_with_top_folder(tmp_path):
    expected = write_folders(tmp_path / "tree")
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "tree", arcname="pets")
    _check_folder(read_image_folder(archive, cache=False), expected)
    _check_folder(load_dataset("imagefolder", root=archive, cache=False), expected)


def test_image_folder_jpeg_and_val_split(tmp_path):
    rng = np.random.default_rng(3)
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        Image.fromarray(random_image(rng)).save(tmp_path / split / "a" / "x.JPG", quality=95)
    dataset = read_image_folder(tmp_path, cache=False)
    assert dataset.x_test.shape == (1, 3, 8, 8) and dataset.info["test_split"] == "val"


def test_image_folder_errors(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(
        DatasetError,
        match=re.escape(f"no image folders in {missing}: expected {missing}/train/<class>/<image>"),
    ):
        read_image_folder(missing, cache=False)
    with pytest.raises(DatasetError, match=re.escape("(no training images)")):
        read_image_folder(tmp_path, cache=False)
    write_folders(tmp_path)
    (tmp_path / "test" / "zebra").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "test" / "zebra" / "z.png")
    with pytest.raises(DatasetError, match=r"classes \['zebra'\] have no folder"):
        read_image_folder(tmp_path, cache=False)


def test_image_folder_bad_images(tmp_path):
    write_folders(tmp_path)
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(tmp_path / "train" / "cat" / "9999.png")
    with pytest.raises(DatasetError, match="must have the same size"):
        read_image_folder(tmp_path, cache=False)
    (tmp_path / "train" / "cat" / "9999.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="cannot decode image .*9999.png"):
        read_image_folder(tmp_path, cache=False)


def test_cifar10_jpeg_name_and_release_order(tmp_path):
    write_cifar_jpeg(tmp_path / "tree", {"train": 2, "test": 1})
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(tmp_path / "tree" / split, arcname=split)
    plain = read_cifar10_jpeg(tmp_path, cache=False)
    assert plain.name == "CIFAR-10 (JPEG)" and "not pixel-exact" in plain.info["pixels"]
    assert plain.y_train.tolist() == [c for c in range(10) for _ in range(2)]

    # With the release's label sequences beside the archive, images return to release order:
    # the k-th release image of class c is file k of folder c.
    train_order = np.array([3, 0, 3, 9, 1, 0] + [c for c in (1, 2, 2, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9)])
    test_order = np.arange(10)[::-1].copy()
    np.save(tmp_path / "cifar10-train-labels-original-order.npy", train_order)
    np.save(tmp_path / "cifar10-test-labels-original-order.npy", test_order)
    ordered = load_dataset("cifar10-jpeg", root=tmp_path, cache=False)
    assert ordered.info["order"] == "official release order"
    assert ordered.y_train.tolist() == train_order.tolist()
    seen = {}
    for label, image in zip(ordered.y_train.tolist(), ordered.x_train):
        k = seen.get(label, 0)
        seen[label] = k + 1
        assert int(image[0, 0, 0]) == 10 * label + k
    assert ordered.y_test.tolist() == test_order.tolist()


def test_cifar10_jpeg_rejects_other_classes(tmp_path):
    write_folders(tmp_path)
    with pytest.raises(DatasetError, match="is not CIFAR-10 \\(JPEG\\)"):
        read_cifar10_jpeg(tmp_path, cache=False)
    with pytest.raises(DatasetError, match="no CIFAR-10 \\(JPEG\\) in"):
        read_cifar10_jpeg(tmp_path / "nowhere", cache=False)


def _check_tiny(dataset, val):
    assert dataset.name == "Tiny-ImageNet" and dataset.class_names == ("n01", "n02", "n03")
    assert dataset.y_train.tolist() == [0, 0, 1, 1, 2, 2]
    # Train folder n01 is class 0; its images were written with colour 20 * 1 + 5 * i.
    colours = dataset.x_train[:, 0, 0, 0].int().tolist()
    assert all(
        abs(a - b) <= 2 for a, b in zip(colours, [20, 25, 0, 5, 40, 45])
    )  # JPEG: near-exact on flat colour
    assert dataset.y_test.tolist() == [dataset.class_names.index(w) for _, w in val]  # annotation order
    assert all(abs(int(v) - (100 + 30 * k)) <= 2 for k, v in enumerate(dataset.x_test[:, 0, 0, 0]))


def test_tiny_imagenet_folder_and_zip(tmp_path):
    base, val = write_tiny(tmp_path)
    _check_tiny(read_tiny_imagenet(tmp_path, cache=False), val)
    _check_tiny(read_tiny_imagenet(base, cache=False), val)
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(base.rglob("*")):
            z.write(path, path.relative_to(tmp_path).as_posix())
    _check_tiny(read_tiny_imagenet(archive, cache=False), val)
    _check_tiny(load_dataset(archive, cache=False), val)


def test_tiny_imagenet_errors(tmp_path):
    with pytest.raises(DatasetError, match="expected .*tiny-imagenet-200/wnids.txt.*tiny-imagenet-200.zip"):
        load_dataset("tiny-imagenet", root=tmp_path, cache=False)
    base, _ = write_tiny(tmp_path)
    annotations = base / "val" / "val_annotations.txt"
    annotations.write_text("val_0.JPEG\tn99\t0\t0\t7\t7\n")
    with pytest.raises(DatasetError, match="line 1: expected '<file> <wnid> ...' with a wnid from wnids.txt"):
        read_tiny_imagenet(tmp_path, cache=False)
    annotations.write_text("val_77.JPEG\tn01\t0\t0\t7\t7\n")
    with pytest.raises(DatasetError, match="names val_77.JPEG, missing from"):
        read_tiny_imagenet(tmp_path, cache=False)
    annotations.unlink()
    with pytest.raises(DatasetError, match="missing val/val_annotations.txt"):
        read_tiny_imagenet(tmp_path, cache=False)
