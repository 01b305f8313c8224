"""Reading the members of tar and zip archives without extracting them to disk."""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import DatasetError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")


def is_archive(path: Path) -> bool:
    """True if ``path`` is a file whose name says it is a tar or zip archive."""
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def iter_archive(path: Path, select: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member path, bytes)`` for the regular-file members ``select`` accepts.

    Member paths use ``/`` and lose a leading ``./``. Tar archives are read in one sequential
    pass, because random access into a compressed tar re-decompresses from the start.

    Raises:
        DatasetError: if the archive is unreadable or truncated.
    """
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    name = _clean(info.filename)
                    if not info.is_dir() and select(name):
                        yield name, archive.read(info)
        else:
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    name = _clean(member.name)
                    if member.isfile() and select(name):
                        handle = archive.extractfile(member)
                        assert handle is not None  # regular files always have a handle
                        yield name, handle.read()
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
        raise DatasetError(f"cannot read archive {path}: {error}") from None


def _clean(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name
