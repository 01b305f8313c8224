"""RISTA (Algorithm 1 of the Elastic DL paper): the one functional core of every dictionary layer.

Solves, approximately and by unrolling, the Elastic DL problem (Eq. 12)

    min_z  β/2 ‖x − A*(z)‖²  +  (1−β)/2 ‖x − A*(z)‖₁  +  λ‖z‖₁

starting from z₀ = A(x) and taking ``n_steps`` reweighted proximal-gradient steps

    r_t = x − A*(z_t)
    w_t = 1 / (2(|r_t| + ε))                     (the Lemma 4.1 majorizer of |r|, smoothed by ε)
    z_{t+1} = T_{λη}( z_t + η·A((β + (1−β)w_t) ⊙ r_t) ).

β = 1 is Vanilla DL (plain ISTA on the ℓ2 problem, Eq. 7; w is never computed), β = 0 is
Robust DL (Eq. 8). ``n_steps`` counts updates after z₀, so the paper's T is ``n_steps + 1`` and
``n_steps = 0`` is exactly a bias-free convolution.

With ε > 0 each step is an exact majorize-minimize step for the smoothed fidelity
ρ_ε(r) = |r| − ε·log(1 + |r|/ε) (w is ρ_ε's derivative in r², and ρ_ε is concave in r²), which
tends to |r| as ε → 0; descent of that objective is guaranteed for η ≤ 1/(‖A‖²·(β + (1−β)/(2ε))).

Gradient policy of the reweighting (``w_grad``): ``"exact"`` differentiates through w, whose
derivative in r is up to 1/(2ε); ``"detached"`` treats w as a constant in the backward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from .conv_ops import dict_adjoint, dict_apply, pair
from .thresholds import threshold

Number = float | torch.Tensor


class RistaTerms(NamedTuple):
    """Per-step, per-example objective terms; each tensor has shape (n_steps + 1, N)."""

    residual_l2_sq: torch.Tensor  # ‖x − A*(z_t)‖²
    residual_l1: torch.Tensor  # ‖x − A*(z_t)‖₁
    code_l1: torch.Tensor  # ‖z_t‖₁
    total: torch.Tensor  # Eq. 12: β/2·l2² + (1−β)/2·l1 + λ·‖z‖₁


def reweighting(r: torch.Tensor, eps: float, w_grad: str) -> torch.Tensor:
    """w = 1 / (2(|r| + ε)), differentiable or a constant in the backward pass."""
    if w_grad not in ("exact", "detached"):
        raise ValueError(f"w_grad must be 'exact' or 'detached', got {w_grad!r}")
    base = r.detach() if w_grad == "detached" else r
    return 0.5 / (base.abs() + eps)


def is_vanilla(beta: Number) -> bool:
    """β is the constant 1 (not a learnable tensor): the reweighting drops out entirely."""
    return not isinstance(beta, torch.Tensor) and float(beta) == 1.0


def check_iteration(n_steps: int, beta: Number, eps: float, w_grad: str | None = None) -> None:
    """The argument checks every RISTA implementation shares (``w_grad`` when it takes one)."""
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    if eps <= 0 and not is_vanilla(beta):
        raise ValueError(f"eps must be > 0 when beta < 1 (w = 1/(2(|r|+eps))), got {eps}")
    if w_grad is not None and w_grad not in ("exact", "detached"):
        raise ValueError(f"w_grad must be 'exact' or 'detached', got {w_grad!r}")


def objective_terms(
    x: torch.Tensor, z: torch.Tensor, recon: torch.Tensor, beta: Number, lam: Number
) -> tuple[torch.Tensor, ...]:
    r = (x - recon).flatten(1)
    l2 = r.pow(2).sum(1)
    l1 = r.abs().sum(1)
    code = z.flatten(1).abs().sum(1)
    return l2, l1, code, beta / 2 * l2 + (1 - beta) / 2 * l1 + lam * code


def rista(
    x: torch.Tensor,
    weight: torch.Tensor,
    *,
    n_steps: int = 2,
    beta: Number = 1.0,
    lam: Number = 0.1,
    step: Number = 1.0,
    eps: float = 0.01,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    nonneg: bool = False,
    w_grad: str = "exact",
    return_terms: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, RistaTerms]:
    """Unrolled RISTA. Returns the code z_T, and with ``return_terms`` also :class:`RistaTerms`.

    ``beta``, ``lam`` and ``step`` may be Python numbers or scalar tensors (learnable).
    """
    check_iteration(n_steps, beta, eps)
    geom = dict(stride=pair(stride), padding=pair(padding), dilation=pair(dilation), groups=groups)
    size = x.shape[-2:]
    z = dict_apply(x, weight, **geom)
    terms: list[tuple[torch.Tensor, ...]] = []
    vanilla = is_vanilla(beta)
    for _ in range(n_steps):
        recon = dict_adjoint(z, weight, size, **geom)
        if return_terms:
            terms.append(objective_terms(x, z, recon, beta, lam))
        r = x - recon
        if not vanilla:
            r = (beta + (1 - beta) * reweighting(r, eps, w_grad)) * r
        z = threshold(z + step * dict_apply(r, weight, **geom), lam * step, nonneg)
    if not return_terms:
        return z
    terms.append(objective_terms(x, z, dict_adjoint(z, weight, size, **geom), beta, lam))
    stacked = [torch.stack([t[i] for t in terms]) for i in range(4)]
    return z, RistaTerms(*stacked)
