"""edlnet.allocator: glibc keeps freed memory for reuse; the switch and its record."""

import ctypes.util

import pytest
import torch

from edlnet import allocator
from edlnet.layers.rista_fast import _host_threshold, _threshold_


@pytest.fixture
def fresh(monkeypatch):
    # the state is per process; each test starts from "not requested" (mallopt itself is
    # idempotent, so applying it again here is harmless)
    monkeypatch.setattr(allocator, "_state", None)
    return monkeypatch


def test_keep_freed_memory_applies_on_glibc_and_is_recorded(fresh):
    fresh.delenv(allocator.ENV, raising=False)
    assert allocator.allocator_state().reason == "not requested"
    state = allocator.keep_freed_memory()
    on_glibc = allocator._glibc() is not None
    assert state.applied == on_glibc and state.reason == ("mallopt" if on_glibc else "not glibc")
    assert allocator.keep_freed_memory() is state  # idempotent
    from edlnet.records import environment

    assert environment()["allocator"] == state.reason


def test_the_switch_opts_out_and_refuses_unknown_values(fresh):
    fresh.setenv(allocator.ENV, "system")
    assert allocator.keep_freed_memory() == allocator.AllocatorState(False, f"{allocator.ENV}=system")
    fresh.setattr(allocator, "_state", None)
    fresh.setenv(allocator.ENV, "jemalloc")
    with pytest.raises(ValueError, match="'keep' .* or 'system'"):
        allocator.keep_freed_memory()


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to probe")
def test_glibc_probe_finds_mallopt_or_nothing():
    libc = allocator._glibc()
    assert libc is None or callable(libc.mallopt)


def test_a_cpu_tensor_threshold_is_bitwise_the_clamp_formula():
    """The fast path reads a CPU tensor τ as a number (softshrink, one pass): bitwise the
    v − clamp(v, −τ, τ) it computed before, values at ±τ and zeros included."""
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        tau = torch.tensor(0.0731, dtype=dtype)
        v = torch.randn(100_000, generator=gen, dtype=dtype) * 0.1
        v[:4] = torch.stack([tau, -tau, torch.zeros((), dtype=dtype), -torch.zeros((), dtype=dtype)])
        want = v - torch.clamp(v, -tau, tau)
        got = _threshold_(v.clone(), _host_threshold(tau), nonneg=False, buf=[])
        assert torch.equal(got, want) and torch.equal(got.signbit(), want.signbit())
