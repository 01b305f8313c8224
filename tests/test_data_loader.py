"""BatchIterator: seeded determinism, epochs, drop_last, float range, DDP sharding."""

import pytest
import torch

from edlnet.data import BatchIterator, crop_flip

torch.set_num_threads(1)

N = 23


def _data():
    x = torch.arange(N, dtype=torch.uint8).view(N, 1, 1, 1).repeat(1, 3, 4, 4)
    return x, torch.arange(N) % 5


def _ids(x):
    return (x[:, 0, 0, 0] * 255).round().long().tolist()


def test_batches_are_float_in_unit_range_and_seeded():
    x, y = _data()
    a = list(BatchIterator(x, y, 8, seed=1))
    b = list(BatchIterator(x, y, 8, seed=1))
    c = list(BatchIterator(x, y, 8, seed=2))
    assert len(a) == 3 and [len(bx) for bx, _ in a] == [8, 8, 7]
    assert all(bx.dtype == torch.float32 and bx.min() >= 0 and bx.max() <= 1 for bx, _ in a)
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    assert [_ids(bx) for bx, _ in a] != [_ids(bx) for bx, _ in c]
    seen = sum((_ids(bx) for bx, _ in a), [])
    assert sorted(seen) == list(range(N))  # every example exactly once
    assert all(torch.equal(by, torch.tensor(_ids(bx)) % 5) for bx, by in a)  # labels follow images


def test_epochs_reshuffle_and_resume_exactly():
    x, y = _data()
    loader = BatchIterator(x, y, 8, seed=0, drop_last=True, augment=crop_flip)
    assert len(loader) == 2
    epoch0 = [bx for bx, _ in loader]
    epoch1 = [bx for bx, _ in loader]  # iter() advances the epoch
    assert not torch.equal(torch.cat(epoch0), torch.cat(epoch1))
    loader.set_epoch(1)
    assert torch.equal(torch.cat([bx for bx, _ in loader]), torch.cat(epoch1))
    resumed = [bx for bx, _ in loader.epoch(1, start=1)]
    assert len(resumed) == 1 and torch.equal(resumed[0], epoch1[1])


def test_no_shuffle_keeps_order_and_returns_index():
    x, y = _data()
    batches = list(BatchIterator(x, y, 10, shuffle=False, return_index=True))
    assert [idx.tolist() for _, _, idx in batches] == [list(range(0, 10)), list(range(10, 20)), [20, 21, 22]]
    assert all(_ids(bx) == idx.tolist() for bx, _, idx in batches)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("augment", [None, crop_flip])
def test_shards_are_disjoint_and_union_is_the_global_batch(drop_last, augment):
    x, y = _data()
    x = x.clone()
    x[:, :, :, 0] = 0  # asymmetric images so flips and crops show in the pixels
    single = list(BatchIterator(x, y, 6, seed=5, drop_last=drop_last, augment=augment, return_index=True))
    for world in (2, 3):
        shards = [
            list(
                BatchIterator(
                    x,
                    y,
                    6,
                    seed=5,
                    drop_last=drop_last,
                    augment=augment,
                    return_index=True,
                    rank=r,
                    world_size=world,
                )
            )
            for r in range(world)
        ]
        assert all(len(s) == len(single) for s in shards)  # same number of steps on every rank
        for step, (gx, gy, gidx) in enumerate(single):
            parts = [s[step] for s in shards]
            indices = [p[2].tolist() for p in parts]
            assert sum(indices, []) == gidx.tolist()  # contiguous slices, in order: the global batch
            assert len(set(sum(indices, []))) == len(gidx)  # disjoint
            assert torch.equal(torch.cat([p[0] for p in parts]), gx)  # same (augmented) pixels
            assert torch.equal(torch.cat([p[1] for p in parts]), gy)


def test_invalid_arguments():
    x, y = _data()
    with pytest.raises(ValueError, match="divisible by world_size"):
        BatchIterator(x, y, 7, world_size=2)
    with pytest.raises(ValueError, match="labels"):
        BatchIterator(x, y[:3], 4)
