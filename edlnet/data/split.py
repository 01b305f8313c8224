"""Seeded train/validation split of a label vector."""

from __future__ import annotations

import torch


def validation_indices(
    labels: torch.Tensor, size: int | float, seed: int = 0, stratified: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(len(labels))`` into (train, validation) index tensors, both sorted.

    Args:
        labels: 1-D integer class labels.
        size: number of validation examples, or a fraction in (0, 1) of the examples.
        seed: seed of the CPU ``torch.Generator`` that draws the split; same seed, same split.
        stratified: keep each class's share of the validation set equal to its share of the
            data (largest-remainder rounding), so small validation sets are not class-skewed.

    Returns:
        ``(train_idx, val_idx)`` as int64 CPU tensors, disjoint, covering every index once.
    """
    labels = labels.detach().cpu().long()
    n = labels.numel()
    k = _resolve_size(size, n)
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=generator)
    if not stratified or k == 0:
        val = perm[:k]
    else:
        val = _stratified_pick(labels, perm, k)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[val] = True
    # Sorted indices keep the original (release) order inside both parts.
    return torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()


def _resolve_size(size: int | float, n: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise TypeError(f"validation size must be an int or a float fraction, got {size!r}")
    if isinstance(size, float):
        if not 0.0 < size < 1.0:
            raise ValueError(f"a fractional validation size must lie in (0, 1), got {size}")
        return int(round(size * n))
    if not 0 <= size < n:
        raise ValueError(f"validation size must be in [0, {n}) for {n} examples, got {size}")
    return size


def _stratified_pick(labels: torch.Tensor, perm: torch.Tensor, k: int) -> torch.Tensor:
    """Pick ``k`` indices from ``perm`` with per-class quotas proportional to class counts."""
    n = labels.numel()
    counts = torch.bincount(labels)
    exact = counts.double() * k / n
    quota = exact.floor().long()
    # Largest remainders get the leftover slots; the stable sort breaks ties by class index.
    leftover = k - int(quota.sum())
    order = torch.sort(-(exact - quota), stable=True).indices
    quota[order[:leftover]] += 1
    # Walk the permutation class by class: the first quota[c] members of class c in
    # permuted order go to validation, so the draw stays uniform within each class.
    permuted_labels = labels[perm]
    by_class = torch.sort(permuted_labels, stable=True).indices
    sorted_labels = permuted_labels[by_class]
    starts = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.arange(n) - starts[sorted_labels]
    chosen = by_class[rank_in_class < quota[sorted_labels]]
    return perm[chosen]
