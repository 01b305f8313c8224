"""Which dataset a path holds, from its name and layout (the table's detection rules)."""

from __future__ import annotations

from pathlib import Path

from .archive import is_archive
from .errors import DatasetError
from .table import DATASETS


def detect_format(path: Path) -> str:
    """The name of the dataset whose reader understands ``path``.

    Each rule of :class:`~edlnet.data.entry.Detection` is tried for every dataset of the table,
    in table order, before the next rule.

    Raises:
        DatasetError: no dataset recognises ``path``; the message lists what each would need.
    """
    lower = path.name.lower()
    if path.is_file():
        for entry in DATASETS:
            if lower.endswith(entry.detect.file_suffixes):
                return entry.name
        if is_archive(path):
            for entry in DATASETS:
                if lower.startswith(entry.detect.archive_prefixes):
                    return entry.name
            for entry in DATASETS:
                if entry.detect.any_archive:
                    return entry.name
    elif path.is_dir():
        for entry in DATASETS:
            if path.name in entry.detect.folder_names:
                return entry.name
        for entry in DATASETS:
            if any((path / marker).exists() for marker in entry.detect.markers):
                return entry.name
    layouts = ", ".join(f"{e.name} ({e.detect.describe()})" for e in DATASETS if e.detect.describe())
    raise DatasetError(f"cannot tell which dataset {path} holds: expected one of {layouts}")
