"""Operator norm ‖A‖₂ of a convolutional dictionary by power iteration on A*A.

The norm sets the ISTA step (η = 1/L with L = ‖A‖²) and, by default, normalizes the dictionary.
SDNet re-runs up to 50 iterations before every batch; here the singular vector is cached and
warm-started, so a training step costs a couple of batch-1 convolutions, and the returned σ is
differentiable in the weight (σ = ‖A v‖ with v fixed, the exact derivative at convergence — the
same construction as ``torch.nn.utils.spectral_norm``). Everything here runs in fp32 with
autocast off: the cached vector must not turn bf16 in an autocast step, and σ scales every code
of its layer. Warm steps never read a value back to the host (no device sync, no
``torch.compile`` graph break); the cold start does, for its stopping test, once per layer and
input size — so run one eager training-mode forward before ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .conv_ops import dict_adjoint, dict_apply

Geometry = dict
WARM_POWER_ITERS = 2  # per training step, from the cached vector
COLD_POWER_ITERS = 200  # from the start vector, until the estimate settles (tol 1e-6)


def initial_vector(shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """A deterministic start vector, so norms (and hence outputs) are reproducible."""
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(tuple(shape), generator=gen, dtype=torch.float64)
    return (v / v.norm()).to(device=like.device, dtype=torch.float32)


@torch.no_grad()
def power_iterate(
    weight: torch.Tensor, v: torch.Tensor, geom: Geometry, n_iter: int, tol: float = 0.0
) -> torch.Tensor:
    """Run up to ``n_iter`` iterations v ← A*A v/‖A*A v‖ (fp32), stopping early when the norm
    estimate changes by less than ``tol`` (relative). Returns the new unit vector."""
    w = weight.detach().float()
    size = v.shape[-2:]
    prev = None
    with torch.autocast(v.device.type, enabled=False):
        for _ in range(n_iter):
            u = dict_apply(v, w, **geom)
            v = dict_adjoint(u, w, size, **geom)
            v = v / v.norm().clamp_min(1e-30)
            if tol > 0:
                # the stopping test reads σ on the host: only the cold start pays for it; warm
                # steps (tol = 0, every training step) never synchronize with the device
                sigma = float(u.norm())
                if prev is not None and abs(sigma - prev) <= tol * abs(sigma):
                    break
                prev = sigma
    return v


def refresh_vector(
    weight: torch.Tensor,
    cached: torch.Tensor | None,
    shape: Sequence[int],
    like: torch.Tensor,
    geom: Geometry,
) -> torch.Tensor:
    """The singular vector for inputs of ``shape`` (batch 1): ``WARM_POWER_ITERS`` iterations
    from ``cached`` when it fits, else a cold start run to convergence."""
    if cached is None or tuple(cached.shape) != tuple(shape) or cached.device != like.device:
        return power_iterate(weight, initial_vector(shape, like), geom, COLD_POWER_ITERS, 1e-6)
    return power_iterate(weight, cached, geom, WARM_POWER_ITERS)


def operator_norm(weight: torch.Tensor, v: torch.Tensor, geom: Geometry) -> torch.Tensor:
    """σ = ‖A v‖ for the (detached) unit vector v: equal to ‖A‖₂ when v has converged, and
    differentiable in ``weight`` with autograd."""
    with torch.autocast(v.device.type, enabled=False):
        return dict_apply(v.to(weight.dtype), weight, **geom).norm()
