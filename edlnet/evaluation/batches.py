"""Batches: the unit of work, of seeding, of sharding and of resuming.

Examples are cut into fixed batches of consecutive indices (``batch_size`` each); rank ``r`` of
``world_size`` takes batches ``r, r + world_size, ...``. Every random choice of an entry on a
batch is seeded from the evaluation's seed and the batch index, so a batch gives the same
result whichever process runs it and whatever else it runs: merging the shards of any world
size gives exactly the unsharded result.
"""

from __future__ import annotations

import math

# Seeds of different batches must differ (fresh random starts) yet be fixed by the batch.
SEED_STRIDE = 1_000_003


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


def batch_seed(seed: int, batch: int) -> int:
    """The seed of every random choice an entry makes on batch ``batch``."""
    return (int(seed) * SEED_STRIDE + int(batch)) % 2**31
