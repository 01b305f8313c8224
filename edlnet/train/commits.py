"""Checkpoint folders that survive a kill at any instant.

A checkpoint (``checkpoints/last``, ``checkpoints/best``) is one folder: the model
(``model.safetensors``, ``model.json``: what ``edlnet.load`` reads), for ``last`` the training
state (``train_state.safetensors`` + ``.json``) and ``metrics.jsonl`` as of its epoch, and a
``manifest.json`` with every file's size and SHA-256, written last. A commit

1. fills a fresh ``.last.tmp`` folder, fsyncs every file and the folder;
2. moves the previous ``last.prev`` out of sight (renamed, then deleted), renames ``last`` to
   ``last.prev`` and ``.last.tmp`` to ``last``, fsyncing ``checkpoints/`` after each rename.

So at every instant ``last`` or ``last.prev`` is a complete checkpoint, and a kill between the
two renames leaves a complete ``.last.tmp`` that :func:`recover` finishes installing. A ``last``
that fails its manifest (truncated, edited, half-copied) is set aside and the run resumes from
``last.prev``, with a message naming both. The run's ``metrics.jsonl`` is rewritten (atomically)
from the checkpoint's own copy after each commit and on resume, so it never holds an epoch the
weights do not, nor lacks one they do.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..checkpoint_format import META, WEIGHTS, CheckpointError

MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"
PREV = ".prev"  # last -> last.prev
TMP = ".tmp"  # .last.tmp while being written
TRASH = ".trash"  # .last.prev.trash while being deleted
MANIFEST_FORMAT = "edlnet-checkpoint"


def fsync_path(path: Path) -> None:
    """Flush a file or a directory entry to disk (renames are durable only after the parent
    directory is fsynced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, info: dict[str, Any] | None = None) -> None:
    files = {
        p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    text = json.dumps({"format": MANIFEST_FORMAT, "files": files, **(info or {})}, indent=1)
    (folder / MANIFEST).write_text(text)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


Required = tuple  # file names; a tuple among them means: one of these


def _missing(required: Required, present: Callable[[str], bool]) -> list[str]:
    out = []
    for need in required:
        options = need if isinstance(need, tuple) else (need,)
        if not any(present(n) for n in options):
            out.append(" or ".join(options))
    return out


def verify(folder: Path, required: Required = (META, WEIGHTS)) -> str | None:
    """``None`` when ``folder`` is a complete checkpoint holding ``required``, else what is
    wrong with it. Folders from before manifests existed are checked for their files and a
    readable weights header."""
    folder = Path(folder)
    if not folder.is_dir():
        return "it does not exist"
    manifest_file = folder / MANIFEST
    if manifest_file.exists():
        manifest = read_manifest(folder)
        if manifest is None or manifest.get("format") != MANIFEST_FORMAT:
            return f"{MANIFEST} is unreadable"
        for name, expect in manifest.get("files", {}).items():
            p = folder / name
            if not p.is_file():
                return f"{name} is missing"
            if p.stat().st_size != expect["size"]:
                return f"{name} has {p.stat().st_size} bytes, the manifest says {expect['size']}"
            if _sha256(p) != expect["sha256"]:
                return f"{name} does not match its checksum in {MANIFEST}"
        missing = _missing(required, lambda n: n in manifest.get("files", {}))
        return f"{', '.join(missing)} missing" if missing else None
    missing = _missing(required, lambda n: (folder / n).is_file())
    if missing:
        return f"{', '.join(missing)} missing"
    try:  # an old folder: at least the JSON must parse and the weights header must be whole
        json.loads((folder / META).read_text())
        from safetensors import safe_open

        with safe_open(str(folder / WEIGHTS), framework="pt") as f:
            list(f.keys())
    except Exception as e:
        return f"it is unreadable ({type(e).__name__}: {e})"
    return None


def commit(final: Path, fill: Callable[[Path], None], info: dict[str, Any] | None = None) -> None:
    """Make ``final`` (a folder) hold what ``fill(tmp_folder)`` writes, atomically, keeping the
    previous ``final`` as ``final.prev`` (see the module docstring)."""
    final = Path(final)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{final.name}{TMP}"
    if tmp.exists():  # a commit that was killed while writing
        shutil.rmtree(tmp)
    tmp.mkdir()
    fill(tmp)
    write_manifest(tmp, info)
    for p in tmp.iterdir():
        fsync_path(p)
    fsync_path(tmp)
    fsync_path(parent)
    if final.exists():
        prev = parent / f"{final.name}{PREV}"
        if prev.exists():  # out of sight in one rename, then deleted at leisure
            trash = parent / f".{prev.name}{TRASH}"
            if trash.exists():
                shutil.rmtree(trash)
            os.replace(prev, trash)
            fsync_path(parent)
            shutil.rmtree(trash)
        os.replace(final, prev)
        fsync_path(parent)
    os.replace(tmp, final)
    fsync_path(parent)


def recover(final: Path) -> list[str]:
    """Finish or clean up a commit of ``final`` that was interrupted; returns what was done."""
    final = Path(final)
    parent = final.parent
    notes = []
    tmp = parent / f".{final.name}{TMP}"
    if tmp.exists():
        if not final.exists() and verify(tmp) is None:
            os.replace(tmp, final)  # killed between the two renames: the new one is complete
            fsync_path(parent)
            notes.append(f"finished an interrupted checkpoint commit: {tmp.name} -> {final.name}")
        else:
            shutil.rmtree(tmp)
    trash = parent / f".{final.name}{PREV}{TRASH}"
    if trash.exists():
        shutil.rmtree(trash)
    return notes


def choose(final: Path, required: Required = (META, WEIGHTS)) -> tuple[Path, list[str]]:
    """The newest usable checkpoint among ``final`` and ``final.prev``, after :func:`recover`.
    A ``final`` that fails :func:`verify` is renamed ``final.corrupt-<time>`` (kept for
    inspection; never rotated into ``.prev``) and the message says so. Raises
    :class:`CheckpointError` naming both when neither is usable."""
    final = Path(final)
    notes = recover(final)
    prev = final.with_name(final.name + PREV)
    problem = verify(final, required)
    if problem is None:
        return final, notes
    prev_problem = verify(prev, required)
    if prev_problem is not None:
        raise CheckpointError(f"no usable checkpoint: {final} ({problem}) and {prev} ({prev_problem})")
    if final.exists():
        aside = final.with_name(f"{final.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(final, aside)
        fsync_path(final.parent)
        notes.append(
            f"{final} is unusable ({problem}); moved it to {aside.name} and resuming from "
            f"the previous checkpoint {prev}"
        )
    else:
        notes.append(
            f"{final} is missing (killed during a commit); resuming from the previous checkpoint {prev}"
        )
    return prev, notes


def metrics_text(records: list[dict[str, Any]]) -> str:
    from ..records import _jsonable

    return "".join(json.dumps(_jsonable(r), default=str) + "\n" for r in records)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; a torn last line (killed mid-append) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                break
    return out


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, fsynced (file and directory)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)
