"""Sharding: which process evaluates which batches, and merging their per-example results.

Examples are cut into fixed batches of consecutive indices (``batch_size`` each); rank ``r`` of
``world_size`` takes batches ``r, r + world_size, ...``. Every entry's randomness is seeded by
the batch, so results do not depend on the number of processes: merging the shards of any
world size gives exactly the unsharded result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from .entries import BatchRecord, run_batch
from .probe import float64_copy
from .store import PartialStore
from .suites import Entry

Log = Callable[[str], None]


def batch_ranges(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the fixed batches over ``n`` examples."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def shard_batches(n: int, batch_size: int, rank: int, world_size: int) -> list[int]:
    """Indices of the batches that rank ``rank`` of ``world_size`` evaluates."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return list(range(rank, math.ceil(n / batch_size), world_size))


class EvaluationPaused(RuntimeError):
    """The evaluation's deadline passed; finished batches are in the store, rerun to resume."""


def run_shard(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    entries: Sequence[Entry],
    *,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    surrogate: nn.Module | None = None,
    store: PartialStore | None = None,
    log: Log | None = None,
    deadline: float | None = None,
) -> list[BatchRecord]:
    """Evaluate every entry on this rank's batches, entry by entry (``entries[0]`` must be
    the clean entry, which the others need). Batches already in ``store`` are skipped; new
    ones are added to it as soon as they finish. Logs one line per entry."""
    if not entries or entries[0].kind != "clean":
        raise ValueError("the first entry must be the clean entry")
    ranges = batch_ranges(x.shape[0], batch_size)
    mine = shard_batches(x.shape[0], batch_size, rank, world_size)
    done = store.load() if store is not None else {}
    records: dict[tuple[str, int], BatchRecord] = {}
    fd_model = None
    for entry in entries:
        resumed = 0
        for b in mine:
            start, stop = ranges[b]
            record = done.get((entry.name, b))
            if record is None or (record.start, record.stop) != (start, stop):
                if deadline is not None and time.time() > deadline:
                    raise EvaluationPaused(
                        f"deadline reached before {entry.name!r}, batch {b}; "
                        "finished batches are saved: run again to resume"
                    )
                if entry.kind == "probe" and fd_model is None:
                    fd_model, _ = float64_copy(model)
                clean = records[("clean", b)].robust if entry.needs_clean else None
                alive = _still_robust(entry, entries, records, b) if entry.cascade else None
                record = run_batch(
                    entry,
                    model,
                    x[start:stop],
                    y[start:stop],
                    batch=b,
                    start=start,
                    seed=seed,
                    clean=clean,
                    surrogate=surrogate,
                    fd_model=fd_model,
                    alive=alive,
                )
                if store is not None:
                    store.add(record)
            else:
                resumed += 1
            records[(entry.name, b)] = record
        if log is not None:
            shard = [records[(entry.name, b)] for b in mine]
            prefix = f"[rank {rank}/{world_size}] " if world_size > 1 else ""
            log(prefix + _entry_line(entry, shard, resumed, len(mine)))
    return list(records.values())


def white_box_column(entry: Entry, record: BatchRecord) -> list[bool | None]:
    """Per example, robust under the entry's white-box part (an AutoAttack entry also holds
    Square, a black-box attack, whose verdict is kept apart)."""
    return record.values.get("white_box", record.robust)


def _still_robust(entry: Entry, entries: Sequence[Entry], records: dict, batch: int) -> list[bool]:
    """Examples of ``batch`` that every white-box attack run before ``entry`` inside its budget
    left robust (None = not evaluated by that attack: it neither breaks nor protects)."""
    alive: list[bool] | None = None
    budget = entry.budget
    for other in entries:
        if other is entry:
            break
        if not (
            other.gradient
            and other.budget is not None
            and budget is not None
            and budget.contains(other.budget)
        ):
            continue
        column = white_box_column(other, records[(other.name, batch)])
        alive = (
            [v is None or bool(v) for v in column]
            if alive is None
            else [a and (v is None or bool(v)) for a, v in zip(alive, column)]
        )
    n = len(records[("clean", batch)].robust)
    return alive if alive is not None else [True] * n


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


def merge_records(
    records: Sequence[BatchRecord], entries: Sequence[Entry], n: int, batch_size: int
) -> dict[str, EntryResult]:
    """Per-example results of every entry from the batch records of all ranks."""
    n_batches = len(batch_ranges(n, batch_size))
    by_key = {(r.entry, r.batch): r for r in records}
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


def gather_records(records: list[BatchRecord], world_size: int) -> list[BatchRecord]:
    """Every rank's batch records on every rank (torch.distributed; a no-op for one rank)."""
    if world_size <= 1:
        return records
    import contextlib

    import torch
    import torch.distributed as dist

    from edlnet.train.distributed import collective_device

    boxes: list[Any] = [None] * world_size
    device = collective_device()
    # all_gather_object has no device argument: under NCCL it stages on the current CUDA
    # device, which must be this rank's own (else every rank would use cuda:0)
    guard = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with guard:
        dist.all_gather_object(boxes, [r.to_json() for r in records])
    return [BatchRecord.from_json(r) for box in boxes for r in box]


def _entry_line(entry: Entry, shard: list[BatchRecord], resumed: int, total: int) -> str:
    robust = [v for r in shard for v in r.robust if v is not None]
    seconds = sum(r.seconds for r in shard)
    what = entry.name if entry.kind != "clean" else "clean"
    if entry.kind == "probe":
        probed = sum(1 for r in shard for v in next(iter(r.values.values()), []) if v is not None)
        text = f"{what}: probed the input gradients of {probed} examples"
    elif robust:
        text = f"{what}: accuracy {sum(robust) / len(robust):.4f} ({sum(robust)}/{len(robust)})"
    else:
        text = f"{what}: no examples"
    policies: dict[str, list[bool]] = {}
    for p in dict.fromkeys(k for r in shard for k in r.by_policy):
        # A batch with nothing to attack has no per-policy columns: its flags hold for all.
        policies[p] = [v for r in shard for v in r.by_policy.get(p, r.robust) if v is not None]
    if len(policies) > 1:
        text += " [" + ", ".join(f"{p} {sum(c) / len(c):.4f}" for p, c in policies.items() if c) + "]"
    text += f", {seconds:.1f} s"
    if resumed:
        text += f" ({resumed}/{total} batches resumed)"
    return text


__all__ = ["EntryResult", "batch_ranges", "gather_records", "merge_records", "run_shard", "shard_batches"]
