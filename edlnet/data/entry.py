"""The record the dataset table holds for one dataset: its reader, what its files look like and
what a model trained on it must fit (see :mod:`edlnet.data.table`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .dataset import ImageDataset


class Reader(Protocol):
    """``read(root, cache=..., cache_dir=...)``: the dataset at ``root`` (a folder, archive or
    file, as the reader documents). Readers without a decode step ignore the cache arguments."""

    def __call__(
        self, root: Path, *, cache: bool, cache_dir: str | os.PathLike | None
    ) -> ImageDataset: ...  # pragma: no cover - protocol


@dataclass(frozen=True)
class Detection:
    """How :func:`edlnet.data.detect_format` recognises a dataset's files, from names and layout
    only (nothing is read). Each rule is tried for every dataset, in table order, before the
    next rule: folder names, then markers; for files, suffixes, then archive prefixes, then
    ``any_archive``.

    Attributes:
        folder_names: a folder with one of these names is the dataset itself; checked before
            markers because such a folder may hold files that are another layout's markers
            (CIFAR-100's ``train`` file looks like an image folder's ``train/``).
        markers: a folder holding an entry (file or folder) of one of these names holds it.
        file_suffixes: a file whose lower-case name ends with one of these is it.
        archive_prefixes: a tar or zip archive whose lower-case name starts with one of these.
        any_archive: every archive that no dataset claims by prefix.
    """

    folder_names: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    file_suffixes: tuple[str, ...] = ()
    archive_prefixes: tuple[str, ...] = ()
    any_archive: bool = False

    def describe(self) -> str:
        """The rules in words, e.g. "folder holding a, b or c; archive a*", for the error
        that lists what would have been recognised."""
        parts = []
        if self.folder_names:
            parts.append(f"folder named {_either(self.folder_names)}")
        if self.markers:
            parts.append(f"folder holding {_either(self.markers)}")
        if self.archive_prefixes:
            parts.append(f"archive {_either([p + '*' for p in self.archive_prefixes])}")
        if self.file_suffixes:
            parts.append(f"file {_either(['*' + s for s in self.file_suffixes])}")
        if self.any_archive:
            parts.append("any other tar or zip archive")
        return "; ".join(parts)


def _either(words: Sequence[str]) -> str:
    """ "a", "a or b", "a, b or c"."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of the table.

    Attributes:
        name: what :func:`edlnet.data.load_dataset` takes (case, ``-`` and ``_`` ignored).
        read: the reader (see :class:`Reader`).
        description: one line: what the dataset is and which files are read.
        num_classes: classes of the official release; ``None`` when the files decide
            (image folders, ``.npz``).
        image_size: ``(channels, height, width)`` of its images; ``None`` when the files decide.
        labels: what label ``i`` is, e.g. "index into the sorted wnids".
        detect: how a path of this dataset is recognised; an empty :class:`Detection` for a
            dataset that is only loaded by name (the bundled sample).
        needs_root: the root is the dataset itself, so there is no default location under
            :func:`edlnet.data.default_data_root`.
    """

    name: str
    read: Reader
    description: str
    num_classes: int | None
    image_size: tuple[int, int, int] | None
    labels: str
    detect: Detection = field(default_factory=Detection)
    needs_root: bool = False
