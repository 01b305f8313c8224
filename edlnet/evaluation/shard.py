"""One process's share of an evaluation: every entry on this rank's batches, resumable.

Entries run in order, each on all of this rank's batches (:mod:`edlnet.evaluation.batches`),
so that a cascaded entry sees what the earlier ones broke. Finished batches go to the partial
store at once and are skipped on a rerun; a deadline pauses the shard between two batches.
:func:`gather_batch_results` then hands every rank the results of all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from .batch_result import BatchResult
from .batches import batch_ranges, shard_batches
from .probe import float64_copy
from .run_entry import run_entry_on_batch
from .store import PartialStore
from .suite import Entry

Log = Callable[[str], None]


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
) -> list[BatchResult]:
    """Evaluate every entry on this rank's batches, entry by entry (``entries[0]`` must be
    the clean entry, which the others need). Batches already in ``store`` are skipped; new
    ones are added to it as soon as they finish. Logs one line per entry."""
    if not entries or entries[0].kind != "clean":
        raise ValueError("the first entry must be the clean entry")
    ranges = batch_ranges(x.shape[0], batch_size)
    mine = shard_batches(x.shape[0], batch_size, rank, world_size)
    done = store.load() if store is not None else {}
    results: dict[tuple[str, int], BatchResult] = {}
    fd_model = None
    for entry in entries:
        resumed = 0
        for b in mine:
            start, stop = ranges[b]
            result = done.get((entry.name, b))
            if result is None or (result.start, result.stop) != (start, stop):
                if deadline is not None and time.time() > deadline:
                    raise EvaluationPaused(
                        f"deadline reached before {entry.name!r}, batch {b}; "
                        "finished batches are saved: run again to resume"
                    )
                if entry.kind == "probe" and fd_model is None:
                    fd_model, _ = float64_copy(model)
                clean = results[("clean", b)].robust if entry.needs_clean else None
                alive = _still_robust(entry, entries, results, b) if entry.cascade else None
                result = run_entry_on_batch(
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
                    store.add(result)
            else:
                resumed += 1
            results[(entry.name, b)] = result
        if log is not None:
            shard = [results[(entry.name, b)] for b in mine]
            prefix = f"[rank {rank}/{world_size}] " if world_size > 1 else ""
            log(prefix + _entry_line(entry, shard, resumed, len(mine)))
    return list(results.values())


def _white_box_column(result: BatchResult) -> list[bool | None]:
    """Per example, robust under the entry's white-box part (an AutoAttack entry also holds
    Square, a black-box attack, whose verdict is kept apart)."""
    return result.values.get("white_box", result.robust)


def _still_robust(
    entry: Entry, entries: Sequence[Entry], results: dict[tuple[str, int], BatchResult], batch: int
) -> list[bool]:
    """Examples of ``batch`` that every white-box attack run before ``entry`` inside its budget
    left robust (None = not evaluated by that attack: it neither breaks nor protects)."""
    alive: list[bool] | None = None
    budget = entry.budget
    for other in entries:
        if other is entry:
            break
        if not (
            other.follows_model_gradients
            and other.budget is not None
            and budget is not None
            and budget.contains(other.budget)
        ):
            continue
        column = _white_box_column(results[(other.name, batch)])
        alive = (
            [v is None or bool(v) for v in column]
            if alive is None
            else [a and (v is None or bool(v)) for a, v in zip(alive, column)]
        )
    n = len(results[("clean", batch)].robust)
    return alive if alive is not None else [True] * n


def gather_batch_results(results: list[BatchResult], world_size: int) -> list[BatchResult]:
    """Every rank's batch results on every rank (torch.distributed; a no-op for one rank)."""
    if world_size <= 1:
        return results
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
        dist.all_gather_object(boxes, [r.to_json() for r in results])
    return [BatchResult.from_json(r) for box in boxes for r in box]


def _entry_line(entry: Entry, shard: list[BatchResult], resumed: int, total: int) -> str:
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


__all__ = ["EvaluationPaused", "gather_batch_results", "run_shard"]
