"""Fast unrolled RISTA: the same function as :func:`edlnet.layers.rista.rista`, as one
``torch.autograd.Function`` with a hand-written backward pass.

Why. A dictionary layer with T = ``n_steps`` updates does the work of 2T + 1 convolutions
forward and twice that backward; everything else is elementwise. Under plain autograd each
elementwise temporary (|r|, |r| + ε, w, β + (1−β)w, the product with r, η·A(u), the sum, sign,
|v| − τ, relu, ...) is a fresh tensor, most of them kept for the backward pass. On a CPU a fresh
tensor of a CIFAR-sized activation also costs page faults (glibc maps blocks of 32 MiB and more
afresh and unmaps them on free, and 64 channels × 32×32 × batch 128 in fp32 is 32 MiB; writing
such a tensor for the first time took ~20 ms against ~3 ms in place, measured on a 2-core AMD
EPYC), so time goes to allocation and memory to bookkeeping. Here the forward pass works in
place in the buffers the convolutions return, the backward pass calls exactly the convolution
gradients autograd would (``aten.convolution_backward``) plus a few in-place elementwise passes
over buffers allocated once per call, and the normalization of the dictionary (weight/‖A‖₂) and
the rescaling of the code (·‖A‖₂) happen inside the function, so neither copy is kept.

What is saved for the backward pass: the input x and the raw weight (both alive anyway), the
output (usually also saved by the next BatchNorm), and per step the code z_t and the residual
r_t = x − A*(z_t) — 2T tensors beyond what a convolution keeps. Everything else (w, the weighted
residual u, threshold masks, signs, the normalized dictionary) is recomputed elementwise: the
threshold mask of step t is ``z_{t+1} != 0`` and u, w are functions of r_t. Dropping any of the
2T tensors costs a convolution (recomputing z_0 = A(x) measured +6% per layer), so the finer
trade-off is per layer: with ``recompute=True`` only x and the weight are saved and the whole
layer is re-run in the backward pass (one extra forward of its 2T + 1 convolutions).

Gradients (u_t = c(r_t)·r_t with c(r) = β + (1−β)w(r), w(r) = 1/(2(|r|+ε)), v_t = z_t + η·A(u_t),
z_{t+1} = T_τ(v_t), τ = λη; g denotes ∂L/∂·):

    g_v  = g_{z_{t+1}} ⊙ 1[z_{t+1} ≠ 0]                    ∂L/∂τ  −= ⟨g_{z_{t+1}}, sign z_{t+1}⟩
    g_u  = η·A*(g_v)                                        ∂L/∂η  += ⟨A*(g_v), u_t⟩ (+ λ·∂L/∂τ)
    g_r  = g_u ⊙ ∂u/∂r,  ∂u/∂r = β + (1−β)·2εw²  (exact: d(c·r)/dr, since w − 2w²|r| = 2εw²)
                         ∂u/∂r = β + (1−β)·w      (detached: w held constant)
    ∂L/∂β += ⟨g_u, r_t(1 − w)⟩ (both policies: only w is detached, never β)
    g_{z_t} = g_v − A(g_r),   g_x += g_r,   and g_x += A*(g_{z_0}) for z_0 = A(x);

the weight gradient is the sum of the weight gradients of the 2T + 1 convolutions. The backward
is first-order only (``once_differentiable``): double backward raises an error; use the
reference implementation (``DictConv2d(impl="reference")``) when second derivatives are needed.

Precision. Under autocast the convolutions run in the low-precision dtype only where that is
fast (CUDA, or CPUs whose oneDNN has native bf16/fp16: AVX512-BF16/AMX); everything elementwise
— the code z_t (small updates η·A(u) added to it would round away in bf16), the residual, w and
the thresholds — stays in fp32. On CPUs without native bf16 (e.g. AVX2-only AMD Zen 3) PyTorch
runs bf16 convolutions through a slow fallback, many times slower than fp32 (``edlnet bench
--layers`` shows it on such a machine), so ``conv_dtype="auto"`` keeps them in fp32 there. The
codes saved for the backward pass decide its threshold masks (``z_{t+1} != 0``): in bf16 they
keep fp32's exponent range, so support and sign survive the cast and bf16 copies are saved; fp16
has five exponent bits, small codes would underflow to 0 and change the mask, so with fp16
convolutions the codes are saved in fp32.

Scalars. β, λ, η and the norm may be Python numbers or one-element tensors. Numbers are
constants (the fused single-pass ops: ``addcdiv``, ``softshrink``, ``add(alpha=)``); tensors stay
tensors all the way through forward and backward — never read back with ``float()`` — so a GPU
step has no host synchronization and ``torch.compile(fullgraph=True)`` sees no graph break. A
tensor β uses the weighted residual u = β·r + (1−β)/2·r/(|r|+ε) directly (no division by β).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .conv_ops import IntPair, adjoint_output_padding, pair
from .rista import Number, check_iteration, is_vanilla

LOW_PRECISION = (torch.bfloat16, torch.float16)
# A CPU tensor τ is read as a number (softshrink: one pass instead of two, bitwise the same);
# on other devices that read would be a host synchronization, so it never happens there.
READ_CPU_SCALARS = True


def native_low_precision(device_type: str, dtype: torch.dtype) -> bool:
    """True when convolutions in ``dtype`` run natively (fast) on devices of this type."""
    if device_type == "cpu":
        # oneDNN's own check (AVX512-BF16/AMX for bf16, AVX512-FP16/AMX-FP16 for fp16); without
        # it PyTorch runs low-precision convolutions through a slow reference path
        probe = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}.get(
            dtype
        )
        try:
            return probe is not None and bool(getattr(torch.ops.mkldnn, probe)())
        except (AttributeError, RuntimeError):
            return False
    return True


def resolve_dtypes(
    x: torch.Tensor, weight: torch.Tensor, conv_dtype: torch.dtype | str | None
) -> tuple[torch.dtype, torch.dtype]:
    """(state dtype, convolution dtype). The state (codes, residuals, reweighting) is at least
    fp32; convolutions follow ``conv_dtype``: ``"auto"`` = the autocast dtype when autocast is
    on and that dtype is native on this device, else the state dtype; ``None`` = the state
    dtype; a dtype = that dtype."""
    state = torch.promote_types(torch.promote_types(x.dtype, weight.dtype), torch.float32)
    if conv_dtype is None:
        return state, state
    if conv_dtype == "auto":
        dev = x.device.type
        if torch.is_autocast_enabled(dev):
            low = torch.get_autocast_dtype(dev)
            if low in LOW_PRECISION and native_low_precision(dev, low):
                return state, low
        return state, state
    if not isinstance(conv_dtype, torch.dtype):
        raise ValueError(f"conv_dtype must be 'auto', None or a torch.dtype, got {conv_dtype!r}")
    return state, conv_dtype


def output_dtype(x: torch.Tensor, state: torch.dtype, conv: torch.dtype) -> torch.dtype:
    """The dtype of the layer's result: under autocast with low-precision convolutions, the
    autocast dtype (what ``nn.Conv2d`` returns there, so the BatchNorm, ReLU and residual adds
    after the layer run in bf16 as they do in a plain network; the codes are still computed in
    the state dtype and rounded once), else the state dtype."""
    dev = x.device.type
    if conv != state and torch.is_autocast_enabled(dev) and conv == torch.get_autocast_dtype(dev):
        return conv
    return state


@dataclass(frozen=True)
class _Config:
    n_steps: int
    eps: float
    stride: IntPair
    padding: IntPair
    dilation: IntPair
    groups: int
    nonneg: bool
    exact: bool  # w_grad == "exact"
    vanilla: bool  # β is the constant 1: no reweighting at all
    recompute: bool
    state_dtype: torch.dtype
    conv_dtype: torch.dtype
    out_dtype: torch.dtype  # of the returned code (output_dtype); the saved one stays in state


Scalar = float | torch.Tensor  # a Python number (a constant) or a one-element tensor


@dataclass(frozen=True)
class _Scalars:
    """β, λ, η and the dictionary norm: Python numbers, or tensors (detached: the backward pass
    is written by hand, so the graph only routes their gradients)."""

    beta: Scalar
    lam: Scalar
    step: Scalar
    norm: Scalar | None


def _is_tensor(v: object) -> bool:
    return isinstance(v, torch.Tensor)


def _denominator(r: torch.Tensor, eps: float, out: torch.Tensor) -> torch.Tensor:
    """|r| + ε written into ``out`` (an existing buffer: fresh large tensors cost page faults)."""
    return torch.abs(r, out=out).add_(eps)


def _u_scale(cfg: _Config, beta: Scalar) -> float:
    """c in u = c·u′: for a constant β the weighted residual is handed to the convolution
    without its constant factor, which is folded into η (one elementwise pass less in each
    direction). A tensor β is not folded (c = 1): that would divide by β."""
    if cfg.vanilla or _is_tensor(beta):
        return 1.0
    return beta if beta != 0.0 else 0.5


def _weighted_residual(r: torch.Tensor, den: torch.Tensor, beta: Scalar, out: torch.Tensor) -> torch.Tensor:
    """u′ = u/c for u = (β + (1−β)w)·r = β·r + (1−β)/2 · r/den, den = |r| + ε, written into
    ``out`` (which may be ``den`` itself): r + (1−β)/(2β)·r/den, or r/den when β = 0; u itself
    for a tensor β. Forward and backward both use this function, so they see bitwise the same
    values."""
    if _is_tensor(beta):
        p = torch.div(r, den, out=out).mul_((1.0 - beta) / 2.0)
        return torch.addcmul(p, r, beta, out=p)
    if beta == 0.0:
        return torch.div(r, den, out=out)
    return torch.addcdiv(r, r, den, value=(1.0 - beta) / (2.0 * beta), out=out)


def _threshold_(v: torch.Tensor, tau: Scalar, nonneg: bool, buf: list) -> torch.Tensor:
    """In place: soft thresholding T_τ(v) = sign(v)·max(|v| − τ, 0) (softshrink computes
    v ∓ τ, bitwise the same), or max(v − τ, 0) when ``nonneg``. A tensor τ (softshrink takes
    numbers only) uses v − clamp(v, −τ, τ), again bitwise the same, with ``buf[0]`` as the
    clamp's buffer (allocated on first use)."""
    if nonneg:
        return v.sub_(tau).clamp_min_(0.0)
    if _is_tensor(tau):
        if not buf or buf[0].shape != v.shape or buf[0].stride() != v.stride():
            buf[:] = [torch.empty_like(v)]
        return v.sub_(torch.clamp(v, -tau, tau, out=buf[0]))
    return torch._C._nn.softshrink(v, tau, out=v)


def _host_threshold(tau: Scalar) -> Scalar:
    """τ as a number when it is a CPU tensor (reading it costs no device sync there, and the
    threshold then runs as softshrink: one pass instead of two, bitwise the same); as it is on
    other devices and while ``torch.compile`` traces."""
    if (
        READ_CPU_SCALARS
        and _is_tensor(tau)
        and tau.device.type == "cpu"
        and not torch.compiler.is_compiling()
    ):
        return tau.item()
    return tau


def _axpy_(y: torch.Tensor, x: torch.Tensor, a: Scalar, out: torch.Tensor) -> torch.Tensor:
    """y + a·x into ``out`` (``out`` may be ``x`` or ``y``), one pass for a number or a tensor a."""
    if _is_tensor(a):
        return torch.addcmul(y, x, a, out=out)
    return torch.add(y, x, alpha=a, out=out)


def _scale_(t: torch.Tensor, a: Scalar) -> torch.Tensor:
    """t·a in place, skipped for the constant 1."""
    return t if (not _is_tensor(a) and a == 1.0) else t.mul_(a)


def _flat(t: torch.Tensor) -> torch.Tensor | None:
    """A 1-D view over the elements of a dense tensor in memory order, or None."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).reshape(-1)  # a view for channels_last
    return None


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """⟨a, b⟩ without a temporary when both tensors share a dense memory layout."""
    fa, fb = _flat(a), _flat(b)
    if fa is not None and fb is not None and a.stride() == b.stride():
        return torch.dot(fa, fb)
    return (a * b).sum()


class _Scratch:
    """Reusable buffers for moving tensors between the state and the convolution dtype.

    On the CPU an elementwise op that mixes bf16 and fp32 runs unvectorized, and a fresh large
    tensor costs page faults: for 8M elements (64 channels × 32×32 × batch 128), fp32 − bf16 took
    14–25 ms and a bf16 → fp32 cast into a new tensor 12 ms, against 1.1–1.4 ms for a cast into
    an existing buffer followed by a ~1.9 ms same-dtype op (benchmarks/mixed_dtype_ops.py, results
    in benchmarks/results/mixed_dtype_ops.md, on the 2-core AMD EPYC). So every
    conversion copies into a buffer kept per ``slot``; the caller is done with a slot's previous
    content before it reuses the slot. When no conversion is needed the tensor itself comes
    back."""

    def __init__(self) -> None:
        self.buffers: dict[str, torch.Tensor] = {}

    def cast(self, t: torch.Tensor, dtype: torch.dtype, slot: str) -> torch.Tensor:
        if t.dtype == dtype:
            return t
        b = self.buffers.get(slot)
        if b is None or b.shape != t.shape or b.dtype != dtype or b.stride() != t.stride():
            b = self.buffers[slot] = torch.empty_like(t, dtype=dtype)
        return b.copy_(t)


def _forward(
    x: torch.Tensor, wc: torch.Tensor, cfg: _Config, sc: _Scalars, keep: bool
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Run the iteration on x (state dtype) with the (normalized) weight wc (conv dtype). Returns
    the output (z_T, times the norm) and, when ``keep``, the codes z_0..z_{T-1} in the
    convolution dtype (the backward pass needs them only as convolution inputs and for their
    support and sign, which a cast to bf16 keeps) and the residuals r_0..r_{T-1} (state dtype).
    Elementwise work is done in place in the state dtype; conversions go through
    :class:`_Scratch` buffers."""
    sd, cd = cfg.state_dtype, cfg.conv_dtype
    low = cd != sd
    scratch = _Scratch()
    z = F.conv2d(scratch.cast(x, cd, "x"), wc, None, cfg.stride, cfg.padding, cfg.dilation, cfg.groups).to(sd)
    op = adjoint_output_padding(
        x.shape[-2:], z.shape[-2:], wc.shape[-2:], cfg.stride, cfg.padding, cfg.dilation
    )
    tau = _host_threshold(sc.lam * sc.step)  # read once per call, not once per step
    alpha = sc.step * _u_scale(cfg, sc.beta)
    zs: list[torch.Tensor] = []
    rs: list[torch.Tensor] = []
    ubuf = None  # the weighted residual of every step (it overwrites |r| + ε in place)
    tbuf: list[torch.Tensor] = []  # the threshold's buffer when τ is a tensor
    # fp16 codes could underflow to 0 and change the backward pass's threshold masks: keep them
    # in the state dtype (bf16 has fp32's exponent range: its codes keep their support)
    exact_codes = keep and low and cd == torch.float16
    for _ in range(cfg.n_steps):
        if exact_codes:
            zc = scratch.cast(z, cd, "z")
            saved = z.clone()
        else:
            zc = z.to(cd) if keep else scratch.cast(z, cd, "z")  # saved codes need their own copy
            saved = zc
        recon = F.conv_transpose2d(zc, wc, None, cfg.stride, cfg.padding, op, cfg.groups, cfg.dilation)
        # r = x − A*(z), in place in the reconstruction (or its state-dtype copy)
        r = recon.to(sd) if keep else scratch.cast(recon, sd, "r")
        r = torch.sub(x, r, out=r)
        if cfg.vanilla:
            u = r
        else:
            ubuf = torch.empty_like(r) if ubuf is None else ubuf
            u = _weighted_residual(r, _denominator(r, cfg.eps, ubuf), sc.beta, ubuf)
        au = F.conv2d(scratch.cast(u, cd, "u"), wc, None, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
        del u
        if keep:
            zs.append(saved)
            rs.append(r)
        del zc, saved
        # v = z + η·A(u) = z + η·c·A(u′); thresholded in place it is z_{t+1}
        if low:  # z is not saved (a copy is): update it in place
            v = _axpy_(z, scratch.cast(au, sd, "a"), alpha, out=z)
        else:  # z may be saved: write v into A(u′)'s buffer
            v = _axpy_(z, au, alpha, out=au)
        z = _threshold_(v, tau, cfg.nonneg, tbuf)
    if sc.norm is not None:
        z.mul_(sc.norm)
    return z, zs, rs


def conv_gradients(
    grad: torch.Tensor,
    inp: torch.Tensor,
    wc: torch.Tensor,
    cfg: _Config,
    transposed: bool,
    output_padding: IntPair,
    want_input: bool = True,
    want_weight: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Input and weight gradients of A(inp) = conv2d (or, ``transposed``, of A*(inp) =
    conv_transpose2d with ``output_padding``) for the output gradient ``grad``, in one call: the
    very call autograd makes (``aten.convolution_backward``), in the dtype of its arguments."""
    gi, gw, _ = torch.ops.aten.convolution_backward(
        grad,
        inp,
        wc,
        None,
        cfg.stride,
        cfg.padding,
        cfg.dilation,
        transposed,
        output_padding if transposed else (0, 0),
        cfg.groups,
        [want_input, want_weight, False],
    )
    return gi, gw


def _backward(
    g: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    wc: torch.Tensor,
    out: torch.Tensor,
    zs: Sequence[torch.Tensor],
    rs: Sequence[torch.Tensor],
    cfg: _Config,
    sc: _Scalars,
    needs: Sequence[bool],
) -> tuple[torch.Tensor | None, ...]:
    """Gradients (x, weight, β, λ, η, norm) from the saved or recomputed trajectory; ``weight``
    is the raw weight, ``wc`` the dictionary the iteration ran on (weight/norm, conv dtype)."""
    need_x, need_weight, need_beta, need_lam, need_step, need_norm = needs
    # the gradient of the dictionary wc: for the weight, and for the norm through weight/norm
    need_w = need_weight or need_norm
    sd, cd = cfg.state_dtype, cfg.conv_dtype
    low = cd != sd
    scratch = _Scratch()
    op = adjoint_output_padding(
        x.shape[-2:], out.shape[-2:], wc.shape[-2:], cfg.stride, cfg.padding, cfg.dilation
    )

    def conv_backward(grad: torch.Tensor, inp: torch.Tensor, transposed: bool, want_input: bool, slot: str):
        # The very call autograd makes for F.conv2d / F.conv_transpose2d: input and weight
        # gradients in one pass, so the backward costs what the convolutions' backward costs.
        # The input gradient comes back in the state dtype, in scratch ``slot`` when converted.
        gi, gw = conv_gradients(
            scratch.cast(grad, cd, "grad"),
            scratch.cast(inp, cd, "inp"),
            wc,
            cfg,
            transposed,
            op,
            want_input,
            need_w,
        )
        if gi is not None:
            gi = scratch.cast(gi, sd, slot)
        return gi, (gw.to(sd) if gw is not None else None)

    def owned(t: torch.Tensor) -> torch.Tensor:
        # a tensor that outlives its scratch slot (low precision: the slot is reused)
        return t.clone() if low else t

    zero = torch.zeros((), dtype=sd, device=g.device)
    g_beta, g_lam, g_step = zero.clone(), zero.clone(), zero.clone()
    g_norm = None
    g_w: torch.Tensor | None = None
    g_x: torch.Tensor | None = None
    beta, step, eps = sc.beta, sc.step, cfg.eps
    if sc.norm is not None:
        if need_norm:
            g_norm = _dot(g, out) / sc.norm  # out = norm·z_T
        gz = g * sc.norm
    else:
        gz = g.clone(memory_format=torch.preserve_format)  # owned: masked in place below
    tau_grad = need_lam or need_step
    # Buffers reused by every step: the sign of the code, |r| + ε, and u (then r/(|r|+ε)).
    # With bf16 codes the support comes from the sign too (a bf16 == 0 test is a slow path).
    use_sign = tau_grad or low
    sbuf = torch.empty_like(out) if use_sign else None
    den = None if cfg.vanilla else torch.empty_like(rs[0])
    ubuf = None if cfg.vanilla else torch.empty_like(rs[0])

    for t in reversed(range(cfg.n_steps)):
        z_next = out if t == cfg.n_steps - 1 else zs[t + 1]
        # g_v = g_{z_{t+1}} on the support of z_{t+1} (the threshold's derivative)
        if use_sign:
            # (saved codes may be bf16: their sign goes into the fp32 buffer by a copy)
            s = torch.sign(z_next, out=sbuf) if z_next.dtype == sbuf.dtype else sbuf.copy_(z_next).sign_()
            if tau_grad:
                g_tau = -_dot(gz, s)
                g_lam += step * g_tau
                g_step += sc.lam * g_tau
            gz.mul_(s if cfg.nonneg else s.abs_())
        else:
            gz.masked_fill_(z_next == 0, 0.0)
        r = rs[t]
        if cfg.vanilla:
            u = r
        else:  # u exactly as the forward pass computed it (same function, then the same cast)
            u = _weighted_residual(r, _denominator(r, eps, den), beta, ubuf)
        gi, gw = conv_backward(gz, u, False, True, "gi")  # gi = A*(g_v); gw: of A(u′)'s weight
        if need_w:
            c = step * _u_scale(cfg, beta)
            g_w = gw.mul_(c) if g_w is None else _axpy_(g_w, gw, c, out=g_w)
        if need_step or need_beta:
            a_r = _dot(gi, r)
            if cfg.vanilla:
                g_step += a_r
            else:
                p = torch.div(r, den, out=ubuf)  # r/(|r|+ε) = 2rw, in u's buffer
                a_p = _dot(gi, p)
                g_step += beta * a_r + (1.0 - beta) / 2 * a_p  # ⟨A*(g_v), u⟩
                g_beta += step * (a_r - 0.5 * a_p)  # ⟨g_u, r(1 − w)⟩
        del u
        # g_r = η·(∂u/∂r)⊙A*(g_v), written into gi's buffer:
        #   exact:    ∂u/∂r = β + (1−β)·ε/(2(|r|+ε)²)
        #   detached: ∂u/∂r = β + (1−β)/(2(|r|+ε))
        if cfg.vanilla:
            _scale_(gi, step)
        else:
            k = (1.0 - beta) * eps / 2 if cfg.exact else (1.0 - beta) / 2
            if cfg.exact:
                den.square_()
            if _is_tensor(beta):  # η·k·gi/den + η·β·gi (den is recomputed next step)
                q = torch.div(gi, den, out=den).mul_(step * k)
                torch.addcmul(q, gi, step * beta, out=gi)
            elif beta != 0.0:  # η·β·(gi + k/β·gi/den)
                torch.addcdiv(gi, gi, den, value=k / beta, out=gi).mul_(step * beta)
            else:
                torch.div(gi, den, out=gi).mul_(step * k)
        g_r = gi
        # r = x − A*(z_t): g_{z_t} = g_v − A(g_r), weight gradient enters with a minus sign
        ga, gw = conv_backward(g_r, zs[t], True, True, "ga")
        gz.sub_(ga)
        del ga
        if need_w:
            g_w = g_w.sub_(gw) if g_w is not None else gw.neg_()
        if need_x:
            g_x = owned(g_r) if g_x is None else g_x.add_(g_r)
        del g_r
    # z_0 = A(x)
    if need_x or need_w:
        gi, gw = conv_backward(gz, x, False, need_x, "gi")
        if need_x:
            g_x = owned(gi) if g_x is None else g_x.add_(gi)
        if need_w:
            g_w = gw if g_w is None else g_w.add_(gw)
    if sc.norm is not None and g_w is not None:
        # wc = weight/norm: ∂L/∂weight = g_w/norm, and norm also enters as −⟨g_w, weight⟩/norm²
        if need_norm:
            g_norm = g_norm - _dot(g_w, weight.to(sd)) / sc.norm**2
        g_w = g_w.div_(sc.norm)
    return (
        g_x,
        g_w if need_weight else None,
        g_beta if need_beta else None,
        g_lam if need_lam else None,
        g_step if need_step else None,
        g_norm,
    )


def _dictionary(weight: torch.Tensor, cfg: _Config, sc: _Scalars) -> torch.Tensor:
    """The dictionary the iteration runs on, weight/norm in the convolution dtype; recomputed in
    the backward pass rather than saved (it is as large as the weight)."""
    w = weight.to(cfg.state_dtype)
    if sc.norm is not None:
        w = w / sc.norm
    return w.to(cfg.conv_dtype)


def _detached(v: Scalar | None) -> Scalar | None:
    # a 0-dim view: one-element tensors of any shape broadcast like numbers
    return v.detach().reshape(()) if _is_tensor(v) else v


class _RistaFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, beta, lam, step, norm, cfg: _Config):
        dev = x.device.type
        scalars = (beta, lam, step, norm)
        sc = _Scalars(*(_detached(v) for v in scalars))
        with torch.autocast(dev, enabled=False):
            xs = x.to(cfg.state_dtype)
            wc = _dictionary(weight, cfg, sc)
            out, zs, rs = _forward(xs, wc, cfg, sc, keep=not cfg.recompute)
        ctx.cfg = cfg
        # numbers ride on ctx; tensors are saved like every other tensor (torch.compile traces
        # the backward pass from what save_for_backward holds)
        ctx.numbers = tuple(None if _is_tensor(v) else v for v in scalars)
        ctx.tensor_at = tuple(_is_tensor(v) for v in scalars)
        tensors = [v for v in scalars if _is_tensor(v)]
        if cfg.recompute:
            ctx.save_for_backward(x, weight, *tensors)
        else:
            ctx.save_for_backward(x, weight, *tensors, out, *zs, *rs)
        return out if out.dtype == cfg.out_dtype else out.to(cfg.out_dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        cfg = ctx.cfg
        saved = ctx.saved_tensors
        x, weight = saved[0], saved[1]
        rest = iter(saved[2:])
        sc = _Scalars(*(_detached(next(rest)) if t else n for n, t in zip(ctx.numbers, ctx.tensor_at)))
        rest = list(rest)
        dev = x.device.type
        with torch.autocast(dev, enabled=False):
            xs = x.to(cfg.state_dtype)
            wc = _dictionary(weight, cfg, sc)
            if cfg.recompute:
                out, zs, rs = _forward(xs, wc, cfg, sc, keep=True)
            else:
                t = cfg.n_steps
                out, zs, rs = rest[0], rest[1 : 1 + t], rest[1 + t : 1 + 2 * t]
            grads = _backward(
                g.to(cfg.state_dtype), xs, weight, wc, out, zs, rs, cfg, sc, ctx.needs_input_grad[:6]
            )
        g_x, g_w, g_beta, g_lam, g_step, g_norm = grads
        if g_x is not None:
            g_x = g_x.to(x.dtype)
        if g_w is not None:
            g_w = g_w.to(weight.dtype)
        return g_x, g_w, g_beta, g_lam, g_step, g_norm, None


def _scalar(v: Number, name: str) -> Scalar:
    """A tensor stays a tensor (its value is never read on the host: no device sync, no graph
    break); anything else becomes a Python float."""
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise ValueError(f"{name} must be a number or a one-element tensor, got shape {tuple(v.shape)}")
        return v
    return float(v)


def rista_fast(
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
    norm: Number | None = None,
    recompute: bool = False,
    conv_dtype: torch.dtype | str | None = "auto",
) -> torch.Tensor:
    """Unrolled RISTA with a hand-written backward pass.

    Same arguments and result as :func:`~edlnet.layers.rista.rista` (without ``return_terms``),
    plus:

    * ``norm``: run RISTA on the dictionary ``weight / norm`` and return ``norm · z_T`` (what
      ``DictConv2d`` does with ‖A‖₂). Folding both into the function means neither the
      normalized weight nor the unscaled code is kept for the backward pass; ``norm`` may be a
      tensor that requires grad. ``None``: the dictionary is ``weight``, the result z_T.
    * ``recompute``: save only x and the weight, re-run the layer in the backward pass.
    * ``conv_dtype``: see :func:`resolve_dtypes`.

    First-order gradients only (double backward raises an error).
    """
    check_iteration(n_steps, beta, eps, w_grad)
    vanilla = is_vanilla(beta)
    geom = dict(stride=pair(stride), padding=pair(padding), dilation=pair(dilation), groups=groups)
    if n_steps == 0:  # the convolution (with weight/norm, rescaled by norm: the same thing)
        return F.conv2d(x, weight, None, geom["stride"], geom["padding"], geom["dilation"], groups)
    beta, lam, step = _scalar(beta, "beta"), _scalar(lam, "lam"), _scalar(step, "step")
    norm = _scalar(norm, "norm") if norm is not None else None
    # value checks only for numbers: checking a tensor would read it back to the host
    if not _is_tensor(lam) and not _is_tensor(step) and lam * step < 0:
        raise ValueError(f"the threshold lam*step must be >= 0, got lam={lam}, step={step}")
    if norm is not None and not _is_tensor(norm) and not norm > 0:
        raise ValueError(f"norm must be > 0, got {norm}")
    state, conv = resolve_dtypes(x, weight, conv_dtype)
    cfg = _Config(
        n_steps=int(n_steps),
        eps=float(eps),
        nonneg=bool(nonneg),
        exact=w_grad == "exact",
        vanilla=vanilla,
        recompute=bool(recompute),
        state_dtype=state,
        conv_dtype=conv,
        out_dtype=output_dtype(x, state, conv),
        **geom,
    )
    return _RistaFunction.apply(x, weight, beta, lam, step, norm, cfg)
