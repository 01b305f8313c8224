"""Merging the batch results of every rank into one result per entry over all examples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .batch_result import BatchResult
from .batches import batch_ranges
from .suite import Entry


@dataclass
class EntryResult:
    """One entry's merged per-example results over all examples."""

    entry: Entry
    robust: list[bool | None]
    seconds: float
    by_policy: dict[str, list[bool | None]] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)
    grad_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    settings: dict[str, Any] | None = None

    def evaluated(self) -> list[int]:
        """Indices of the examples this entry evaluated."""
        return [i for i, r in enumerate(self.robust) if r is not None]

    def accuracy(self, column: Sequence[bool | None] | None = None) -> float | None:
        """Fraction of evaluated examples still correct (None when it evaluated none)."""
        values = [bool(v) for v in (self.robust if column is None else column) if v is not None]
        return sum(values) / len(values) if values else None


def merge_batch_results(
    results: Sequence[BatchResult], entries: Sequence[Entry], n: int, batch_size: int
) -> dict[str, EntryResult]:
    """Per-example results of every entry from the batch results of all ranks."""
    n_batches = len(batch_ranges(n, batch_size))
    by_key = {(r.entry_name, r.batch): r for r in results}
    merged: dict[str, EntryResult] = {}
    for entry in entries:
        missing = [b for b in range(n_batches) if (entry.name, b) not in by_key]
        if missing:
            raise RuntimeError(
                f"results of entry {entry.name!r} are missing for batches "
                f"{missing[:5]}{' ...' if len(missing) > 5 else ''}; "
                "did every rank finish?"
            )
        parts = [by_key[(entry.name, b)] for b in range(n_batches)]
        result = EntryResult(
            entry=entry,
            robust=[v for p in parts for v in p.robust],
            seconds=sum(p.seconds for p in parts),
            settings=next((p.settings for p in parts if p.settings), None),
        )
        for key in dict.fromkeys(k for p in parts for k in p.by_policy):
            result.by_policy[key] = [v for p in parts for v in p.by_policy.get(key, p.robust)]
        for key in dict.fromkeys(k for p in parts for k in p.values):
            result.values[key] = [v for p in parts for v in p.values.get(key, [None] * (p.stop - p.start))]
        for p in parts:
            for policy, stats in p.grad_stats.items():
                total = result.grad_stats.setdefault(policy, {})
                for k, v in stats.items():
                    total[k] = total.get(k, 0) + int(v)
            result.flags.extend(f for f in p.flags if f not in result.flags)
        merged[entry.name] = result
    return merged
