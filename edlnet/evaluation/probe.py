"""Gradient probe for the masking checks: are input gradients finite, non-zero and true?

Masking need not show at the clean image: a defense can be smooth there and flat or shattered
one step away. So the probe looks at three points per example and per reweighting-gradient
policy: the clean image, a uniformly random point of the main threat model's ball, and the
iterate of a short PGD under that policy (where an attack actually stands). At each:

1. Is the fp32 input gradient of the cross-entropy finite and not all zero (what the attacks
   actually use), and not vanishing: its norm at least ``vanishing_fraction`` of the
   clean-image gradient's?
2. Does it describe the function? Along the unit direction d = g/‖g‖ the loss must change at
   the rate ‖g‖ that the gradient claims. The true rate is measured by central finite
   differences on a float64 copy of the model, where rounding is negligible at the step
   ``h`` (1e-3 in L2, i.e. ~2e-5 per pixel on CIFAR): masking by a non-differentiable front
   (zero gradients), by shattered or noisy gradients, or by a wrong surrogate backward pass
   shows up as a slope far from the claimed one. Where the gradient is zero the probe moves
   along a random direction instead; a function that changes there has a wrong gradient.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edlnet.attacks import attack_mode
from edlnet.layers.gradient_policy import w_grad_policy

# Relative disagreement between the finite-difference slope and the gradient's claim above
# which the gradient is called wrong (a factor of 2 either way; honest gradients of ReLU
# networks agree to many digits at this step).
RELATIVE_TOLERANCE = 0.5
# Slopes below this (float64, loss units per unit L2 step) count as flat for both sides.
ABSOLUTE_FLOOR = 1e-9


def float64_copy(model: nn.Module) -> tuple[nn.Module, str]:
    """A float64 copy of ``model`` for finite differences, and the dtype actually used.

    Falls back to the model itself (fp32, with a larger step) when it cannot be copied or
    cast, e.g. modules holding non-copyable state.
    """
    try:
        twin = copy.deepcopy(model).double()
        return twin, "float64"
    except Exception:
        return model, "float32"


def probe_points(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    policy: str | None,
    norm: str | None,
    eps: float | None,
    pgd_steps: int,
    seed: int,
) -> dict[str, Tensor]:
    """The points the probe looks at: clean, random in the ball, and a short PGD's iterate."""
    points = {"clean": x}
    if norm is None or eps is None or eps <= 0:
        return points
    from edlnet.attacks import PGD

    attack = PGD(model, eps=eps, norm=norm, steps=max(pgd_steps, 1), seed=seed, w_grad=policy)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    points["random"] = attack._start(x, gen)
    points["pgd"] = attack.run(x, y).x_adv
    return points


def gradient_probe(
    model: nn.Module,
    fd_model: nn.Module,
    x: Tensor,
    y: Tensor,
    policies: tuple[str | None, ...],
    h: float,
    seed: int = 0,
    *,
    norm: str | None = None,
    eps: float | None = None,
    pgd_steps: int = 5,
    vanishing_fraction: float = 1e-3,
) -> dict[str, list]:
    """Per-example probe results for each policy (``None`` = the model's own) at each point.

    Returns lists keyed ``<what>:<policy>`` at the clean image and ``<what>:<policy>@<point>``
    at the other points (``random``, ``pgd``; only with a budget ``norm``/``eps``), where
    ``<what>`` is ``grad_ok`` (fp32 gradient finite and non-zero), ``vanishing`` (its norm
    below ``vanishing_fraction`` of the clean-image gradient's), ``fd_agree`` (its slope
    matches finite differences) and ``fd_ratio`` (finite-difference / claimed slope, NaN when
    undefined).
    """
    out: dict[str, list] = {}
    fd_dtype = next((p.dtype for p in fd_model.parameters()), torch.float32)
    step = h if fd_dtype == torch.float64 else max(h, 1e-2)  # fp32 needs a larger step
    for policy in policies:
        key = policy or "model"
        clean_norm = None
        for point, xp in probe_points(model, x, y, policy, norm, eps, pgd_steps, seed).items():
            suffix = "" if point == "clean" else f"@{point}"
            grad32 = _input_gradient(model, xp, y, policy, torch.float32)
            flat = grad32.reshape(x.shape[0], -1)
            finite = torch.isfinite(flat).all(dim=1)
            ok = finite & (flat != 0).any(dim=1)
            size = flat.nan_to_num(0.0, 0.0, 0.0).norm(dim=1)
            if clean_norm is None:
                clean_norm = size
                vanishing = torch.zeros_like(ok)
            else:
                vanishing = ok & (size < vanishing_fraction * clean_norm)
            agree, ratio = _finite_difference(fd_model, xp, y, policy, fd_dtype, step, seed)
            out[f"grad_ok:{key}{suffix}"] = ok.tolist()
            out[f"vanishing:{key}{suffix}"] = vanishing.tolist()
            out[f"fd_agree:{key}{suffix}"] = agree.tolist()
            out[f"fd_ratio:{key}{suffix}"] = [float(r) for r in ratio]
    return out


def _input_gradient(model: nn.Module, x: Tensor, y: Tensor, policy: str | None, dtype: torch.dtype) -> Tensor:
    with attack_mode(model, policy, x.device.type):
        xr = x.detach().to(dtype).requires_grad_(True)
        loss = F.cross_entropy(model(xr), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xr, allow_unused=True)
    return torch.zeros_like(xr) if grad is None else grad.detach()


def _finite_difference(
    fd_model: nn.Module, x: Tensor, y: Tensor, policy: str | None, dtype: torch.dtype, h: float, seed: int
) -> tuple[Tensor, Tensor]:
    n = x.shape[0]
    x = x.detach().to(dtype)
    with w_grad_policy(fd_model, policy):
        grad = _input_gradient(fd_model, x, y, None, dtype)
        flat = grad.reshape(n, -1)
        finite = torch.isfinite(flat).all(dim=1)
        size = torch.where(finite, flat.norm(dim=1), torch.zeros(n, dtype=dtype, device=x.device))
        usable = finite & (size > 0) & torch.isfinite(size)
        gen = torch.Generator().manual_seed(seed)
        random = torch.randn(flat.shape, generator=gen, dtype=torch.float64).to(flat)
        random = random / random.norm(dim=1, keepdim=True)
        safe = torch.where(usable[:, None], flat, random)
        direction = safe / safe.norm(dim=1, keepdim=True)
        claimed = torch.where(usable, (flat.nan_to_num() * direction).sum(dim=1), torch.zeros_like(size))
        d = direction.view_as(x)
        with attack_mode(fd_model, None, x.device.type), torch.no_grad():
            up = F.cross_entropy(fd_model(x + h * d), y, reduction="none")
            down = F.cross_entropy(fd_model(x - h * d), y, reduction="none")
    measured = (up - down) / (2 * h)
    scale = torch.maximum(measured.abs(), claimed.abs())
    agree = (measured - claimed).abs() <= RELATIVE_TOLERANCE * scale + ABSOLUTE_FLOOR
    agree = agree & finite & torch.isfinite(measured)
    ratio = torch.where(
        claimed != 0,
        measured / claimed.where(claimed != 0, torch.ones_like(claimed)),
        torch.full_like(claimed, math.nan),
    )
    return agree.cpu(), ratio.cpu()
