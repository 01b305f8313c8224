"""Peak memory of one step, measured honestly on each device.

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

from collections.abc import Callable

import torch

METHOD_CUDA = "torch.cuda.max_memory_allocated − allocated before the step"
METHOD_CPU = "torch.profiler(profile_memory=True): peak running sum of CPU tensor allocations"


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
