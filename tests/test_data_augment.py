"""Augmentations: exact crops and flips on known tensors, Cutout squares, Mixup targets."""

import pytest
import torch
import torch.nn.functional as F

from edlnet.data import (
    crop_flip,
    cutout,
    cutout_at,
    flip_where,
    mixup,
    random_crop,
    random_flip,
    sample_beta,
    shift_crop,
)

torch.set_num_threads(1)


def _known(n=6, c=3, h=5, w=7, dtype=torch.uint8):
    # Distinct values per position (mod 256 is fine at this size): every window is unique.
    return (torch.arange(n * c * h * w) % 251 + 1).view(n, c, h, w).to(dtype)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shift_crop_matches_manual_slicing():
    x = _known()
    dy = torch.tensor([0, 1, 2, 4, 3, 2])
    dx = torch.tensor([4, 0, 2, 1, 3, 0])
    out = shift_crop(x, dy, dx, padding=2)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        assert torch.equal(out[i], padded[i, :, dy[i] : dy[i] + 5, dx[i] : dx[i] + 7])
    assert torch.equal(shift_crop(x, torch.full((6,), 2), torch.full((6,), 2), 2), x)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_crop_outputs_are_windows_of_the_padded_image(dtype):
    x = _known(n=40, dtype=dtype)
    out = random_crop(x, padding=2, generator=_gen())
    assert out.shape == x.shape and out.dtype == dtype
    padded = F.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(len(x)):
        hits = [
            (a, b)
            for a in range(5)
            for b in range(5)
            if torch.equal(out[i], padded[i, :, a : a + 5, b : b + 7])
        ]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 5  # offsets really vary
    assert torch.equal(random_crop(x, padding=0, generator=_gen()), x)
    assert torch.equal(random_crop(x, 2, generator=_gen(3)), random_crop(x, 2, generator=_gen(3)))


def test_flip_is_exact():
    x = _known()
    mask = torch.tensor([True, False, True, False, False, True])
    out = flip_where(x, mask)
    for i in range(len(x)):
        assert torch.equal(out[i], x[i, :, :, torch.arange(6, -1, -1)] if mask[i] else x[i])
    assert torch.equal(random_flip(x, p=1.0, generator=_gen()), x.flip(3))
    assert torch.equal(random_flip(x, p=0.0, generator=_gen()), x)
    many = _known(n=64)
    flipped = random_flip(many, generator=_gen())
    is_flipped = [torch.equal(flipped[i], many[i].flip(2)) for i in range(64)]
    assert all(torch.equal(flipped[i], many[i]) or is_flipped[i] for i in range(64))
    assert 10 < sum(is_flipped) < 54


def test_cutout_zeroes_one_clipped_square():
    x = torch.full((3, 2, 8, 8), 9, dtype=torch.uint8)
    out = cutout_at(x, torch.tensor([4, 0, 7]), torch.tensor([4, 0, 2]), size=4)
    assert torch.equal(out[0, 0] == 0, F.pad(torch.ones(4, 4, dtype=torch.bool), (2, 2, 2, 2)))
    assert int((out[1, 0] == 0).sum()) == 4 and bool((out[1, :, :2, :2] == 0).all())  # clipped corner
    assert int((out[2, 0] == 0).sum()) == 3 * 4  # rows 5..7 (8 clipped), columns 0..3
    assert torch.equal(out[:, 1] == 0, out[:, 0] == 0)  # every channel
    rand = cutout(torch.rand(5, 3, 8, 8) + 0.5, size=4, generator=_gen())
    assert rand.dtype == torch.float32 and all(1 <= int((r[0] == 0).sum()) <= 16 for r in rand)


def test_crop_flip_keeps_dtype_shape_range():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=_gen(1))
    out = crop_flip(x, generator=_gen())
    assert out.dtype == torch.uint8 and out.shape == x.shape


def test_mixup_mixes_images_and_targets_consistently():
    x = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8, generator=_gen(2))
    y = torch.arange(8)  # distinct labels: the targets reveal lam and each partner
    mixed, targets = mixup(x, y, num_classes=8, alpha=1.0, generator=_gen(5))
    again, _ = mixup(x, y, num_classes=8, alpha=1.0, generator=_gen(5))
    assert torch.equal(mixed, again) and mixed.dtype == torch.float32
    assert mixed.min() >= 0 and mixed.max() <= 1
    assert targets.shape == (8, 8) and torch.allclose(targets.sum(1), torch.ones(8))
    xf = x.float() / 255
    lams = set()
    for i in range(8):
        lam = float(targets[i, i])
        others = [j for j in range(8) if j != i and targets[i, j] > 0]
        j = others[0] if others else i  # an example paired with itself is unchanged
        assert torch.allclose(mixed[i], lam * xf[i] + (1 - lam) * xf[j], atol=1e-6)
        if others:
            lams.add(round(lam, 6))
    assert len(lams) == 1  # one lam per batch
    soft, soft_targets = mixup(xf, targets, num_classes=8, generator=_gen(1))  # soft labels chain
    assert torch.allclose(soft_targets.sum(1), torch.ones(8))


def test_beta_sampler_is_seeded_and_has_the_right_mean():
    assert sample_beta(0.4, 0.4, _gen(1)) == sample_beta(0.4, 0.4, _gen(1))
    for a, b in ((0.5, 0.5), (2.0, 1.0)):
        g = _gen(0)
        draws = torch.tensor([sample_beta(a, b, g) for _ in range(1500)])
        assert draws.min() >= 0 and draws.max() <= 1
        assert abs(draws.mean().item() - a / (a + b)) < 0.03
