"""Partial results on disk, so an interrupted evaluation resumes where it stopped.

``<out>/partial/`` holds ``fingerprint.json`` (what is being evaluated: suite entries, data,
model weights, seed, batch size) and one JSON-lines file per entry and rank, with one line per
finished batch. A rerun with the same fingerprint skips every batch already there, whatever the
number of ranks; a rerun with a different fingerprint stops with an error instead of mixing
results of two evaluations.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from edlnet.records import append_jsonl, write_json

from .batch_result import BatchResult

PARTIAL = "partial"
FINGERPRINT = "fingerprint.json"


class ResumeError(ValueError):
    """Partial results in the output folder belong to a different evaluation."""


def tensor_digest(*tensors: Tensor) -> str:
    """SHA-256 of tensors' shapes, dtypes and bytes (data identity for the fingerprint)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().to("cpu").contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def model_digest(model: nn.Module | None) -> str | None:
    """SHA-256 of a model's state dict (names, shapes and values)."""
    if model is None:
        return None
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor_digest(tensor).encode())
    return h.hexdigest()


def slug(name: str) -> str:
    """A file name for an entry name ("C&W" -> "C_W-1a2b3c4d"); the checksum keeps names
    that differ only in special characters apart."""
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}-{zlib.crc32(name.encode()):08x}"


class PartialStore:
    """Per-batch results of one evaluation in ``folder/partial``."""

    def __init__(self, folder: Path, rank: int = 0) -> None:
        self.dir = Path(folder) / PARTIAL
        self.rank = rank

    def prepare(self, fingerprint: dict[str, Any], restart: bool = False) -> None:
        """Check (or start) the folder for ``fingerprint``; ``restart`` discards old results.

        Called by one process only (rank 0) before the others read or write.
        """
        if restart and self.dir.exists():
            shutil.rmtree(self.dir)
        path = self.dir / FINGERPRINT
        expected = json.loads(json.dumps(fingerprint, default=str))
        if path.exists():
            try:
                found = json.loads(path.read_text())
            except json.JSONDecodeError:
                found = None
            if found != expected:
                differ = sorted(
                    k for k in set(expected) | set(found or {}) if (found or {}).get(k) != expected.get(k)
                )
                raise ResumeError(
                    f"{self.dir} holds partial results of a different evaluation ({', '.join(differ)} "
                    "differ); rerun with --restart (restart=True) to discard them, or write to "
                    "another folder with --out (out_dir=...)"
                )
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(path, expected)

    def load(self) -> dict[tuple[str, int], BatchResult]:
        """Every finished batch on disk, from any rank of any earlier run."""
        done: dict[tuple[str, int], BatchResult] = {}
        if not self.dir.exists():
            return done
        for path in sorted(self.dir.glob("*.rank*.jsonl")):
            for result in _read_lines(path.read_text().splitlines()):
                done[(result.entry_name, result.batch)] = result
        return done

    def add(self, result: BatchResult) -> None:
        append_jsonl(self.dir / f"{slug(result.entry_name)}.rank{self.rank}.jsonl", result.to_json())


def _read_lines(lines: Iterable[str]) -> Iterable[BatchResult]:
    for line in lines:
        if not line.strip():
            continue
        try:
            yield BatchResult.from_json(json.loads(line))
        except (json.JSONDecodeError, TypeError):
            # A line cut short by an interruption: that batch simply runs again.
            continue
