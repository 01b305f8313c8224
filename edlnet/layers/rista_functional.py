"""Unrolled RISTA as one ``torch.autograd.Function`` with the fast path's hand-written gradients,
in functional tensor code (no in-place updates, no buffers) for ``torch.compile`` to fuse.

Why. The compiled path (:mod:`edlnet.layers.rista_compiled`) first let AOTAutograd
differentiate the plain iteration; its partitioner (under an activation-memory budget) saved x
and the 2T + 1 convolution outputs and recomputed every elementwise value of the forward pass
inside the backward loops. The gradients derived for the fast path (:mod:`edlnet.layers.rista_fast`,
where the formulas are) need fewer passes: this function saves what that path saves — x, the
output, and per step the code z_t (in the convolution dtype, the form the convolutions consume)
and the residual r_t — and its backward pass reads them once per step; Inductor fuses each
chain of elementwise work between two convolution calls into one loop. Between narrow
convolutions those loops are bound by memory traffic, so the bytes are the time. Measured on
the 2-core AVX2 EPYC (one elastic layer, n_steps 2, batch 128, forward+backward,
``benchmarks/compiled_layer_profile.py``; ``benchmarks/results/compiled_layer_profile_before/``
and ``compiled_layer_profile_hand/``): the fused loops stream 57–63 activation-sized tensors
before (Inductor's byte count), 41–51 now; at 16→16 their profiled time went 43 → 22 ms in
channels_last and 46 → 37 ms contiguous, against ~105–190 ms of convolutions.

Scalar gradients. η's gradient needs ⟨A*(g_v), u⟩ per step. A(u) is linear in the weight, so
that sum equals ⟨g_v, A(u)⟩ = ⟨∂L/∂wc, wc⟩ over the weight gradient the same
``convolution_backward`` call returns: a sum over the dictionary's few elements instead of a
pass over two activations (without weight gradients — a frozen dictionary — it is summed
directly). β's gradient, ⟨A*(g_v), r(1 − 1/(2den))⟩, reads what the loop forming g_r reads.
Inductor's count at 16→16, n_steps 2: 41 → 38 activation passes channels_last, 48 → 45
contiguous (``benchmarks/results/compiled_layer_profile_weightdot/``). Its scheduler decides the
rest: a second rewrite of the same kind — ∂L/∂norm's ⟨g, z_T⟩ assembled from the last step's
sums — raised that count in a scratch check instead of lowering it, and was not kept.

Numerics. The same mathematics as the reference: float64 results and gradients agree with
:func:`edlnet.layers.rista.rista` to rounding (tests/test_rista_compiled.py), eagerly and
compiled. The state (codes, residuals, reweighting) is in the state dtype, convolutions in the
convolution dtype; fp16 codes are saved in the state dtype because their threshold masks
(``z_{t+1} ≠ 0``) would change where small codes underflow (bf16 keeps fp32's exponent range).
With bf16 convolutions the backward pass keeps its activation-sized gradients (g_v, g_r, the
code gradient, ∂L/∂x) in bf16 — the convolutions return them in bf16 anyway, and a gradient
needs no small-update precision the forward state does — while the scalar gradients' sums
accumulate in the state dtype. It streams fewer bytes: 33 → 26.5 activation passes per layer
step at 16→16 in channels_last (37 → 32 contiguous; ``benchmarks/results/compiled_layer_profile_bf16*``).
First-order gradients: the backward pass is plain differentiable code, but ``torch.compile``
(the only caller) supports no double backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .conv_ops import adjoint_output_padding
from .rista_fast import _Config, conv_gradients
from .thresholds import threshold


def _conv(t: torch.Tensor, wc: torch.Tensor, cfg: _Config) -> torch.Tensor:
    """A(t) in the convolution dtype."""
    return F.conv2d(t.to(cfg.conv_dtype), wc, None, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)


def _weighted_residual(r: torch.Tensor, beta, cfg: _Config) -> tuple[torch.Tensor, torch.Tensor]:
    """u = (β + (1−β)·w)·r with w = 1/(2(|r| + ε)), and |r| + ε."""
    den = r.abs() + cfg.eps
    return beta * r + (1 - beta) * 0.5 * r / den, den


def _dictionary(weight: torch.Tensor, norm, cfg: _Config) -> torch.Tensor:
    """weight/norm in the convolution dtype (recomputed in the backward pass, not saved)."""
    w = weight.to(cfg.state_dtype)
    return (w / norm if norm is not None else w).to(cfg.conv_dtype)


def _output_padding(x: torch.Tensor, z: torch.Tensor, wc: torch.Tensor, cfg: _Config):
    return adjoint_output_padding(
        x.shape[-2:], z.shape[-2:], wc.shape[-2:], cfg.stride, cfg.padding, cfg.dilation
    )


class RistaIteration(torch.autograd.Function):
    """(x, weight, β, λ, η, norm, cfg) ↦ norm·z_T (z_T when ``norm`` is None). β, λ, η and the
    norm are Python numbers (constants) or 0-dim tensors (their gradients are returned)."""

    @staticmethod
    def forward(ctx, x, weight, beta, lam, step, norm, cfg: _Config):
        sd, cd = cfg.state_dtype, cfg.conv_dtype
        wc = _dictionary(weight, norm, cfg)
        xs = x.to(sd)
        z = _conv(xs, wc, cfg).to(sd)
        op = _output_padding(x, z, wc, cfg)
        zs, rs = [], []
        for _ in range(cfg.n_steps):
            zc = z.to(cd)
            recon = F.conv_transpose2d(zc, wc, None, cfg.stride, cfg.padding, op, cfg.groups, cfg.dilation)
            r = xs - recon.to(sd)
            u = r if cfg.vanilla else _weighted_residual(r, beta, cfg)[0]
            zs.append(z if cd == torch.float16 else zc)
            rs.append(r)
            z = threshold(z + step * _conv(u, wc, cfg).to(sd), lam * step, cfg.nonneg)
        out = z * norm if norm is not None else z
        scalars = (beta, lam, step, norm)
        ctx.cfg = cfg
        ctx.numbers = tuple(None if isinstance(v, torch.Tensor) else v for v in scalars)
        ctx.save_for_backward(x, weight, out, *(v for v in scalars if isinstance(v, torch.Tensor)), *zs, *rs)
        return out.to(cfg.out_dtype)

    @staticmethod
    def backward(ctx, g):
        cfg = ctx.cfg
        sd, cd, n = cfg.state_dtype, cfg.conv_dtype, cfg.n_steps
        bd = cd if cd == torch.bfloat16 else sd  # dtype of activation-sized gradients (docstring, Numerics)
        x, weight, out, *rest = ctx.saved_tensors
        beta, lam, step, norm = (v if v is not None else rest.pop(0) for v in ctx.numbers)
        zs, rs = rest[:n], rest[n:]
        need_x, need_weight, need_beta, need_lam, need_step, need_norm = ctx.needs_input_grad[:6]
        wc = _dictionary(weight, norm, cfg)
        xs = x.to(sd)
        op = _output_padding(x, out, wc, cfg)

        # the dictionary's gradient serves the weight, and the norm through weight/norm; frozen
        # parameters (attacks, the training adversary) skip the convolutions' weight gradients
        need_w = need_weight or need_norm

        def conv_backward(grad, inp, transposed, want_input=True):  # gi in bd, gw in the state dtype
            gi, gw = conv_gradients(grad.to(cd), inp.to(cd), wc, cfg, transposed, op, want_input, need_w)
            return (gi.to(bd) if want_input else None), (gw.to(sd) if need_w else None)

        def add(total, term, scale=1.0):  # total + scale·term, None standing for zero
            if not need_w:
                return None
            return scale * term if total is None else total + scale * term

        # the formulas are derived in rista_fast's docstring (g_v, g_u, g_r, ∂L/∂β, ∂L/∂τ, ...)
        g = g.to(bd)
        g_norm = (g * out).sum(dtype=sd) / norm if need_norm else None  # out = norm·z_T
        gz = g * norm if norm is not None else g
        g_beta = g_lam = g_step = torch.zeros((), dtype=sd, device=g.device)
        g_w = g_x = None
        for t in reversed(range(n)):
            s = torch.sign((out if t == n - 1 else zs[t + 1]).to(bd))
            if need_lam or need_step:
                g_tau = -(gz * s).sum(dtype=sd)
                g_lam = g_lam + step * g_tau
                g_step = g_step + lam * g_tau
            gv = gz * (s if cfg.nonneg else s.abs())  # the threshold's derivative: its support
            r = rs[t]
            if cfg.vanilla:
                u = r
            else:
                u, den = _weighted_residual(r, beta, cfg)
            gi, gw = conv_backward(gv, u, False)  # gi = A*(g_v); gw: of A(u)'s weight
            g_w = add(g_w, gw, step)
            if need_step:  # ⟨A*(g_v), u⟩ = ⟨g_v, A(u)⟩ = ⟨gw, wc⟩: A(u) is linear in the weight, so
                # the weight gradient already holds this sum (a sum over the weight's few elements
                # instead of a pass over two activations)
                g_step = g_step + ((gw * wc.to(sd)).sum() if need_w else (gi * u).sum(dtype=sd))
            if need_beta and not cfg.vanilla:  # ⟨g_u, ∂u/∂β⟩ = η·⟨A*(g_v), r(1 − 1/(2den))⟩, read
                # where g_r is formed from the same A*(g_v) and r
                g_beta = g_beta + step * (gi * (r - 0.5 * r / den)).sum(dtype=sd)
            if cfg.vanilla:
                g_r = step * gi
            else:  # η·(∂u/∂r)·A*(g_v); exact: ∂u/∂r = β + (1−β)ε/(2den²), detached: β + (1−β)/(2den)
                k = (1 - beta) * cfg.eps / 2 if cfg.exact else (1 - beta) / 2
                g_r = (step * (beta * gi + k * gi / (den * den if cfg.exact else den))).to(bd)
            ga, gw = conv_backward(g_r, zs[t], True)  # r = x − A*(z_t): ga = A(g_r)
            gz = gv - ga
            g_w = add(g_w, gw, -1.0)
            if need_x:
                g_x = g_r if g_x is None else g_x + g_r
        if need_x or need_w:
            gi, gw = conv_backward(gz, xs, False, want_input=need_x)  # z_0 = A(x)
            if need_x:
                g_x = gi if g_x is None else g_x + gi
            g_w = add(g_w, gw)
        if norm is not None and need_w:  # wc = weight/norm
            if need_norm:
                g_norm = g_norm - (g_w * weight.to(sd)).sum() / norm**2
            g_w = g_w / norm
        return (
            g_x.to(x.dtype) if need_x else None,
            g_w.to(weight.dtype) if need_weight else None,
            g_beta if need_beta else None,
            g_lam if need_lam else None,
            g_step if need_step else None,
            g_norm if need_norm else None,
            None,
        )
