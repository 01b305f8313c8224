"""Noise corruptions: CIFAR-10-C severities, seeded per example, monotone in severity."""

from __future__ import annotations

import pytest
import torch

from edlnet.evaluation import CORRUPTIONS, SEVERITIES, corrupt

torch.set_num_threads(1)


def images(n: int = 4) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(0)) / 255


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_severity_is_monotone(name):
    x = images()
    distortion = [float((corrupt(x, name, s, seed=3) - x).abs().mean()) for s in range(1, 6)]
    assert all(a < b for a, b in zip(distortion, distortion[1:])), distortion


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_seeded_per_example_in_range_and_on_the_8_bit_grid(name):
    x = images()
    out = corrupt(x, name, 3, seed=1)
    assert torch.equal(out, corrupt(x, name, 3, seed=1))
    assert not torch.equal(out, corrupt(x, name, 3, seed=2))
    # An example's noise depends on its index, not on the batch it is in.
    assert torch.equal(out[2:], corrupt(x[2:], name, 3, seed=1, indices=[2, 3]))
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(torch.round(out * 255) / 255, out)


def test_impulse_noise_amounts_are_cifar10c():
    assert SEVERITIES["impulse_noise"] == (0.01, 0.02, 0.03, 0.05, 0.07)
    assert SEVERITIES["impulse_noise_imagenet_c"] == (0.03, 0.06, 0.09, 0.17, 0.27)
    x = torch.full((8, 3, 32, 32), 128 / 255)  # on the 8-bit grid, so only noise changes it
    for severity, amount in enumerate(SEVERITIES["impulse_noise"], start=1):
        out = corrupt(x, "impulse_noise", severity, seed=0)
        changed = out != x
        assert abs(float(changed.float().mean()) - amount) < 0.01
        assert set(out[changed].unique().tolist()) <= {0.0, 1.0}  # salt and pepper only
        assert torch.equal(out[~changed], x[~changed])  # other pixels exact
    # Shared draws: a higher severity corrupts a superset of the values.
    low = corrupt(x, "impulse_noise", 2, seed=0) != x
    high = corrupt(x, "impulse_noise", 4, seed=0) != x
    assert bool((high | ~low).all())


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(images(), "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(images(), "shot_noise", 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(images() * 255, "shot_noise", 1)
