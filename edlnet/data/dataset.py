"""The container every reader returns: train/test (and optional validation) uint8 tensors."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from .errors import DatasetError
from .split import validation_indices


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images of one dataset as ``uint8`` tensors ``(N, 3, H, W)`` with ``int64`` labels.

    Pixels stay ``uint8`` so CIFAR-sized sets fit on the training device as a whole; batches
    are converted to float in [0, 1] by :class:`edlnet.data.BatchIterator`. Instances are
    immutable: :meth:`split_validation`, :meth:`to` and :meth:`subset` return new ones.

    Attributes:
        name: human-readable name used in records and plots, e.g. ``"CIFAR-10 (JPEG)"``.
        x_train, y_train, x_test, y_test: images and labels of the two standard splits.
        class_names: class names in label order.
        x_val, y_val: validation split carved out of the training set, if any.
        info: provenance as strings (source path, whether pixels are exact, ordering).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    info: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "info", dict(self.info))
        if not self.class_names:
            raise DatasetError(f"{self.name}: no class names")
        if (self.x_val is None) != (self.y_val is None):
            raise DatasetError(f"{self.name}: x_val and y_val must be given together")
        size = None
        for split, x, y in self._splits():
            _check_split(self.name, split, x, y, len(self.class_names))
            if size is None:
                size = tuple(x.shape[2:])
            elif tuple(x.shape[2:]) != size:
                raise DatasetError(
                    f"{self.name}: {split} images are {tuple(x.shape[2:])}, train images {size}"
                )

    def _splits(self) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        splits = [("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)]
        if self.x_val is not None:
            splits.append(("val", self.x_val, self.y_val))
        return splits

    @property
    def num_classes(self) -> int:
        """Number of classes (length of :attr:`class_names`)."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of every image."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        """Device holding the tensors."""
        return self.x_train.device

    def split_validation(self, size: int | float, seed: int = 0, stratified: bool = True) -> ImageDataset:
        """Move a seeded, by default class-stratified, part of the training set to validation.

        Args:
            size: number of validation images, or a fraction in (0, 1) of the training set.
            seed: the split is a pure function of (labels, size, seed, stratified).
            stratified: keep class proportions in the validation set.

        Returns:
            A new dataset whose train split lost exactly the images now in ``x_val``; both
            keep their original relative order. The test split is unchanged.
        """
        if self.x_val is not None:
            raise ValueError(f"{self.name} already has a validation split")
        train_idx, val_idx = validation_indices(self.y_train, size, seed, stratified)
        train_idx = train_idx.to(self.device)
        val_idx = val_idx.to(self.device)
        info = dict(self.info)
        info["validation"] = f"{len(val_idx)} images, seed {seed}, stratified {stratified}"
        return dataclasses.replace(
            self,
            x_train=self.x_train[train_idx],
            y_train=self.y_train[train_idx],
            x_val=self.x_train[val_idx],
            y_val=self.y_train[val_idx],
            info=info,
        )

    def to(self, device: torch.device | str) -> ImageDataset:
        """Copy every split to ``device`` (pixels stay ``uint8``)."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return dataclasses.replace(
            self,
            x_train=move(self.x_train),
            y_train=move(self.y_train),
            x_test=move(self.x_test),
            y_test=move(self.y_test),
            x_val=move(self.x_val),
            y_val=move(self.y_val),
        )

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> ImageDataset:
        """The first ``n_train`` training and ``n_test`` test images (``None``: all).

        First-n rather than random keeps quick runs comparable with standard practice such
        as evaluating on the first 1,000 CIFAR-10 test images.
        """
        return dataclasses.replace(
            self,
            x_train=self.x_train[:n_train],
            y_train=self.y_train[:n_train],
            x_test=self.x_test[:n_test],
            y_test=self.y_test[:n_test],
        )

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        val = "" if self.x_val is None else f", val={len(self.x_val)}"
        return (
            f"ImageDataset({self.name!r}, train={len(self.x_train)}{val}, "
            f"test={len(self.x_test)}, classes={self.num_classes}, image={c}x{h}x{w}, "
            f"device={self.device})"
        )


def _check_split(name: str, split: str, x: object, y: object, num_classes: int) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise DatasetError(f"{name}: {split} images and labels must be torch tensors")
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
        raise DatasetError(
            f"{name}: {split} images must be uint8 (N, 3, H, W), got {x.dtype} {tuple(x.shape)}"
        )
    if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
        raise DatasetError(
            f"{name}: {split} labels must be int64 of shape ({len(x)},), got {y.dtype} {tuple(y.shape)}"
        )
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DatasetError(
            f"{name}: {split} labels must lie in [0, {num_classes}), got [{int(y.min())}, {int(y.max())}]"
        )
