"""Tiny files in the standard layouts of every dataset the table knows (CIFAR-10/100 pickles,
image folders, CIFAR-10 (JPEG) class folders, Tiny-ImageNet), shared by the reader tests and
the dataset-table contract tests."""

import pickle

import numpy as np
from PIL import Image

from edlnet.data import CIFAR10_CLASSES

CLASSES10 = [name.encode() for name in CIFAR10_CLASSES]


def dump_pickle(path, obj):
    # Protocol 2 with bytes keys: what Python 2's cPickle produced for the official files.
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _batch(rng, n, label_key, classes):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, classes, size=n)]
    return {b"batch_label": b"batch", label_key: labels, b"data": data, b"filenames": [b"f.png"] * n}


def write_cifar10(root, per_batch=3, n_test=4, seed=0):
    """Write cifar-10-batches-py under root; return the expected (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = [_batch(rng, per_batch, b"labels", 10) for _ in range(5)]
    for i, batch in enumerate(batches, start=1):
        dump_pickle(folder / f"data_batch_{i}", batch)
    test = _batch(rng, n_test, b"labels", 10)
    dump_pickle(folder / "test_batch", test)
    dump_pickle(
        folder / "batches.meta",
        {b"label_names": CLASSES10, b"num_cases_per_batch": per_batch, b"num_vis": 3072},
    )
    x_train = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
    y_train = np.concatenate([b[b"labels"] for b in batches])
    return x_train, y_train, test[b"data"].reshape(-1, 3, 32, 32), np.array(test[b"labels"])


def write_cifar100(root, n_train=5, n_test=3, seed=1):
    """Write cifar-100-python under root; return the expected [x_train, y_train, x_test, y_test]."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    expected = []
    for split, n in (("train", n_train), ("test", n_test)):
        batch = _batch(rng, n, b"fine_labels", 100)
        batch[b"coarse_labels"] = [v // 5 for v in batch[b"fine_labels"]]
        dump_pickle(folder / split, batch)
        expected += [batch[b"data"].reshape(-1, 3, 32, 32), np.array(batch[b"fine_labels"])]
    names = [f"class{i}".encode() for i in range(100)]
    dump_pickle(folder / "meta", {b"fine_label_names": names, b"coarse_label_names": [b"c"] * 20})
    return expected


def random_image(rng, size=8):
    return rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def write_folders(root, classes=("cat", "ant"), per_class=(2, 1), size=8, seed=0):
    """PNG (lossless) tree; return {split: [(class, array)]} in reader order."""
    rng = np.random.default_rng(seed)
    expected = {}
    for split, n in zip(("train", "test"), per_class):
        expected[split] = []
        for cls in sorted(classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = random_image(rng, size)
                Image.fromarray(pixels).save(root / split / cls / f"{i:04d}.png")
                expected[split].append((cls, pixels))
    return expected


def write_cifar_jpeg(root, per_class, size=4):
    """Class folders named after CIFAR-10's classes, each image a flat colour = its index."""
    for split, n in per_class.items():
        for c, cls in enumerate(CIFAR10_CLASSES):
            (root / split / cls).mkdir(parents=True)
            for k in range(n):
                value = 10 * c + k  # PNG content keeps the value exact; the reader only sees images
                Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(
                    root / split / cls / f"{k:04d}.jpg", format="PNG"
                )


WNIDS = ["n02", "n01", "n03"]  # wnids.txt is not sorted; labels follow the sorted ids
TINY_VAL = [("val_0.JPEG", "n03"), ("val_1.JPEG", "n01"), ("val_2.JPEG", "n03"), ("val_10.JPEG", "n02")]


def write_tiny(root, train_per_class=2, wnids=WNIDS, val=TINY_VAL, size=8):
    """Tiny-ImageNet layout with flat-colour JPEGs; colour encodes (split, class, index).
    ``val`` lists (file, wnid) of the validation images. Returns (folder, val)."""
    base = root / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for c, wnid in enumerate(wnids):
        (base / "train" / wnid / "images").mkdir(parents=True)
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(train_per_class):
            colour = np.full((size, size, 3), (20 * c + 5 * i) % 256, np.uint8)
            Image.fromarray(colour).save(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", quality=100)
    lines = []
    for k, (fname, wnid) in enumerate(val):
        Image.fromarray(np.full((size, size, 3), (100 + 30 * k) % 256, np.uint8)).save(
            base / "val" / "images" / fname, quality=100
        )
        lines.append(f"{fname}\t{wnid}\t0\t0\t7\t7")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return base, val
