"""Keep freed activation memory inside the process (glibc malloc on Linux CPUs).

Why. PyTorch's CPU tensors come straight from ``malloc``. glibc serves a request of more than
the *mmap threshold* (128 KiB at start, raised on the fly up to 32 MiB) with a fresh ``mmap`` and
unmaps it on ``free``; smaller requests come from the heap, whose top is returned to the system
(``trim``) whenever more than 128 KiB of it is free. Either way a training step that allocates
and frees the same activations every iteration gets fresh pages every iteration, and the first
write to each page is a page fault. Measured on the 2-core AMD EPYC of the speed issue
(``benchmarks/allocator.py``, results in ``benchmarks/results/allocator.md``): one elastic
64→64 layer at 32×32 (batch 128, forward + backward) 1.21 s with glibc's defaults, 0.81 s with
the heap kept (bf16: 0.69 → 0.50 s; its plain convolutions 0.94 → 0.74 s). Narrow layers gain
little once larger ones have run in the same process (glibc's threshold rises with the largest
block freed): 16→16 1.07× there.

What. :func:`keep_freed_memory` sets two ``mallopt`` parameters: no ``mmap`` for large blocks
(``M_MMAP_MAX = 0``: the 32 MiB activations of a 64-channel CIFAR layer would still be mapped
afresh under the largest threshold) and no trimming of the heap (``M_TRIM_THRESHOLD``), so the
memory of one step is reused by the next. Nothing numerical changes (the same operations run
on the same values); the process keeps its peak memory until it exits, which is what a training
or evaluation process needs anyway. It affects the whole process: the CLI, the ``Trainer``
(on CPU) and the benchmarks call it; library code that only builds layers never does.

Opt out with the environment variable ``EDLNET_ALLOCATOR=system``. Elsewhere than glibc (macOS,
Windows, musl) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

# glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # bytes of free heap top before glibc gives it back (mallopt takes an int)
ENV = "EDLNET_ALLOCATOR"


@dataclass(frozen=True)
class AllocatorState:
    """What :func:`keep_freed_memory` did: ``applied`` and, if not, why (for benchmark records)."""

    applied: bool
    reason: str


_state: AllocatorState | None = None


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        if not hasattr(libc, "gnu_get_libc_version"):  # only glibc has it (and these parameters)
            return None
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> AllocatorState:
    """Make glibc keep freed memory for reuse (see the module docstring). Idempotent; returns
    whether it applied."""
    global _state
    if _state is not None:
        return _state
    choice = os.environ.get(ENV, "keep").strip().lower()
    if choice == "system":
        _state = AllocatorState(False, f"{ENV}=system")
        return _state
    if choice != "keep":
        raise ValueError(f"{ENV} must be 'keep' (the default) or 'system', got {choice!r}")
    libc = _glibc()
    if libc is None:
        _state = AllocatorState(False, "not glibc")
        return _state
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1  # mallopt returns 1 on success
    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _state = AllocatorState(ok, "mallopt" if ok else "mallopt refused")
    return _state


def allocator_state() -> AllocatorState:
    """The state without changing it (``applied=False, reason='not requested'`` before any call)."""
    return _state if _state is not None else AllocatorState(False, "not requested")
