"""Seeded, shardable mini-batches of on-device uint8 images, returned as float in [0, 1]."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator

import torch

# An augmentation: (uint8 or float batch, generator=...) -> batch; see edlnet.data.augment.
Augment = Callable[..., torch.Tensor]


def to_float(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``uint8`` images to float in [0, 1]; float images are only cast to ``dtype``."""
    return x.to(dtype).div_(255) if x.dtype == torch.uint8 else x.to(dtype)


def stream_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers, distinct for distinct tuples (in practice).

    Hashing rather than ``seed + epoch`` keeps (seed 0, epoch 1) and (seed 1, epoch 0) apart.
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class BatchIterator:
    """Mini-batches of ``(x, y)`` from image and label tensors, for training or evaluation.

    Each epoch draws one global permutation from a CPU ``torch.Generator`` seeded by
    ``(seed, epoch)``, cuts it into global batches of ``batch_size``, and gives rank ``r`` of
    ``world_size`` the ``r``-th contiguous slice of every global batch. The slices of all
    ranks are disjoint and together are exactly the global batch of a single process, so a
    run sees the same examples per step for any world size. Augmentation is applied to the
    whole global batch (with a generator seeded by ``(seed, epoch, step)``) before slicing, so
    augmented pixels are world-size independent too, and resuming at any step is exact.

    Args:
        x: images ``(N, C, H, W)``, ideally ``uint8`` already on the training device.
        y: labels ``(N,)`` (or ``(N, K)``) on the same device.
        batch_size: global batch size; must be divisible by ``world_size``.
        shuffle: draw a new permutation each epoch; ``False`` keeps the stored order.
        drop_last: drop the final incomplete global batch.
        seed: seed of the permutation and augmentation streams.
        rank, world_size: this process's shard (``torch.distributed`` rank and world size).
        augment: called as ``augment(batch, generator=g)`` on the global ``uint8`` batch,
            e.g. :func:`edlnet.data.crop_flip`.
        return_index: also yield the dataset indices of the local batch (for per-example
            records such as evaluation shards merged across ranks).
        dtype: float type of the returned images.

    With ``world_size > 1`` and ``drop_last=False`` the last global batch may be split
    unevenly (a rank can even get an empty slice); every rank still yields it, so all ranks
    run the same number of steps, which DistributedDataParallel needs to not hang.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        augment: Augment | None = None,
        return_index: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} images but {len(y)} labels")
        if x.device != y.device:
            raise ValueError(f"images on {x.device} but labels on {y.device}")
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid batch_size {batch_size}, rank {rank} or world_size {world_size}")
        if batch_size % world_size:
            raise ValueError(f"global batch_size {batch_size} must be divisible by world_size {world_size}")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.augment = augment
        self.return_index = return_index
        self.dtype = dtype
        self.next_epoch = 0

    def __len__(self) -> int:
        """Steps per epoch (the same on every rank)."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter(self)`` run ``epoch`` (e.g. when resuming a run)."""
        self.next_epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        """Run the next epoch; each ``iter()`` advances the epoch, so reshuffling is automatic."""
        epoch, self.next_epoch = self.next_epoch, self.next_epoch + 1
        return self.epoch(epoch)

    def permutation(self, epoch: int) -> torch.Tensor:
        """The global order of example indices in ``epoch`` (CPU, int64)."""
        n = len(self.x)
        if not self.shuffle:
            return torch.arange(n)
        generator = torch.Generator().manual_seed(stream_seed(self.seed, epoch))
        return torch.randperm(n, generator=generator)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield the local batches of ``epoch`` from step ``start`` on (``start`` > 0: resume).

        Yields ``(x, y)`` or, with ``return_index``, ``(x, y, index)``; ``x`` is float in [0, 1].
        """
        order = self.permutation(epoch)
        for step in range(start, len(self)):
            global_idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            local = torch.tensor_split(torch.arange(len(global_idx)), self.world_size)[self.rank]
            if self.augment is None:
                idx = global_idx[local].to(self.x.device)
                images = self.x[idx]
            else:
                generator = torch.Generator().manual_seed(stream_seed(self.seed, epoch, step))
                batch = self.augment(self.x[global_idx.to(self.x.device)], generator=generator)
                idx = global_idx[local].to(self.x.device)
                images = batch[local.to(batch.device)]
            out = (to_float(images, self.dtype), self.y[idx])
            yield (*out, idx) if self.return_index else out
