"""How both benchmarks measure one step: wall time (warm-up, then round-robin repeats, median),
the autocast context of a precision, and peak memory, measured honestly on each device.

Peak memory:

- CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak, minus what was allocated
  before the step: the peak of tensor memory the step added (the caching allocator's own
  reserve is not counted).
- CPU: PyTorch keeps no allocation statistics on the CPU, and process RSS mixes in the
  allocator's caching and every other library. So the step is run once more under
  ``torch.profiler`` with ``profile_memory=True``, and the peak of the running sum of the
  recorded CPU allocations and frees is taken: the peak of tensor memory the step added, the
  same quantity as on CUDA. That run is not timed (the profiler slows it down).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

METHOD_CUDA = "torch.cuda.max_memory_allocated − allocated before the step"
METHOD_CPU = "torch.profiler(profile_memory=True): peak running sum of CPU tensor allocations"


def time_round_robin(
    cases: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1, device: torch.device | None = None
) -> dict[str, dict[str, Any]]:
    """Run each case ``warmup`` times, then all cases in turn ``repeats`` times (so load that
    drifts during the run hits every case alike); seconds per call (median, minimum, count, and
    the per-round times for paired comparisons: :func:`paired_ratio`)."""
    device = torch.device("cpu") if device is None else device
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {
        k: {"median_s": statistics.median(v), "min_s": min(v), "n": len(v), "times_s": v}
        for k, v in times.items()
    }


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free interval for the median: the order statistics x_(k) and x_(n+1-k) with
    the largest k for which P(Binomial(n, ½) < k) ≤ (1 − confidence)/2, so it covers the median
    with probability ≥ ``confidence`` whatever the distribution (10 values: x_(2)..x_(9), 97.9%).
    None when there are too few values for that (fewer than 6 at 95%)."""
    xs = sorted(values)
    n = len(xs)
    alpha, k, tail = (1 - confidence) / 2, 0, 0.0
    while k < n:
        tail += math.comb(n, k) / 2**n  # P(Binomial(n, ½) ≤ k)
        if tail > alpha:
            break
        k += 1
    return (xs[k - 1], xs[n - k]) if k >= 1 else None


def paired_ratio(times: Sequence[float], base: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Time ÷ base time of the same round-robin round, its median and the median's interval.

    The two calls of one round run seconds apart, so load that drifts over the run (a busy
    neighbour on a shared machine) cancels in their ratio; the ratio of the two medians does not
    see that pairing and has no interval."""
    if len(times) != len(base):
        raise ValueError(f"paired_ratio needs one base time per time: {len(times)} ≠ {len(base)}")
    return median_summary([t / b for t, b in zip(times, base)], confidence)


def median_summary(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """The median of ``values`` with its :func:`median_interval` (``ci`` None when too few)."""
    ci = median_interval(values, confidence)
    return {"median": statistics.median(values), "ci": list(ci) if ci else None, "confidence": confidence}


def summary_text(summary: dict[str, Any] | None, digits: int = 2) -> str:
    """A :func:`median_summary` as "median [low, high]" ("–" where there is none, e.g. an old
    record; no brackets where there were too few values for an interval)."""
    if not summary:
        return "–"
    ci = f" [{summary['ci'][0]:.{digits}f}, {summary['ci'][1]:.{digits}f}]" if summary.get("ci") else ""
    return f"{summary['median']:.{digits}f}{ci}"


def median_seconds(fn: Callable[[], None], repeats: int, warmup: int, device: torch.device) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones."""
    return time_round_robin({"fn": fn}, repeats, warmup, device)["fn"]["median_s"]


def autocast_for(precision: str, device: torch.device) -> Callable[[], Any]:
    """A factory of the autocast context of ``precision`` ("fp32" or "bf16") on ``device``."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def peak_step_memory(step: Callable[[], None], device: torch.device) -> tuple[float | None, str]:
    """(peak MB added by one call of ``step``, method) — ``None`` if it cannot be measured."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20, METHOD_CUDA
    if device.type != "cpu":
        return None, f"not measured on {device.type}"
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    try:
        events = prof.profiler.kineto_results.events()
    except AttributeError:  # the profiler's result object changed: say so rather than guess
        return None, "not measured (torch.profiler memory events unavailable)"
    # Frees are recorded as negative sizes; CPU events only (the device enum prints as
    # "DeviceType.CPU").
    allocations = sorted(
        (e.start_ns(), e.nbytes())
        for e in events
        if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")
    )
    running = peak = 0
    for _, nbytes in allocations:
        running += nbytes
        peak = max(peak, running)
    return peak / 2**20, METHOD_CPU
