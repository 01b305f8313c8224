"""Compiled unrolled RISTA: the fast path's gradients (:mod:`edlnet.layers.rista_functional`)
written as plain tensor code and fused by ``torch.compile``.

Why. At narrow widths (16–32 channels at 32×32) a convolution does little work per element, so
the elementwise passes between the 2T + 1 convolutions of a layer — the residual, the
reweighting, the threshold, their gradients, and under bf16 every cast between the bf16
convolutions and the fp32 state — cost as much as the convolutions: the hand-written fast path
(:mod:`edlnet.layers.rista_fast`) runs one pass per operation. Inductor fuses each chain of
elementwise operations (casts included) between two convolution calls into one loop. What the
backward pass reads is decided by :class:`~edlnet.layers.rista_functional.RistaIteration`
(the fast path's saved tensors and gradient formulas), not by AOTAutograd's partitioner, whose
choice — save the convolution outputs, recompute every elementwise value — moved more bytes
through the fused loops (the comparison is in :mod:`edlnet.layers.rista_functional`). Timings
against the convolution floor: ``edlnet bench --layers`` (``benchmarks/results/``).

Numerics. The same mathematics as the reference, with the fast path's precisions: convolutions
in the convolution dtype, codes, residuals and the reweighting in the state dtype (≥ fp32).
Fused loops round differently from one-pass-per-operation code (e.g. contracted multiply-adds),
so results agree with the eager paths to rounding, not bitwise: float64 runs agree to ~1e-12
(tests/test_rista_compiled.py), which is why the fp32 default stays the eager fast path and
this path is chosen by ``DictConv2d(impl="compiled")`` (``dl_options: {impl: compiled}``).

Cost. The first call of each layer geometry compiles (tens of seconds on a 2-core CPU, needs a
C++ compiler there; Triton on CUDA); later calls and later processes reuse Inductor's caches.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence

import torch

from .conv_ops import pair
from .rista import Number, check_iteration, is_vanilla
from .rista_fast import _Config, output_dtype, resolve_dtypes
from .rista_functional import RistaIteration


def rista_iteration(
    x: torch.Tensor,
    weight: torch.Tensor,
    beta: Number,
    lam: Number,
    step: Number,
    norm: torch.Tensor | None,
    *,
    n_steps: int,
    eps: float,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    nonneg: bool,
    w_grad: str,
    state_dtype: torch.dtype,
    conv_dtype: torch.dtype,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """norm·z_T of RISTA on the dictionary weight/norm (weight itself when ``norm`` is None),
    convolutions in ``conv_dtype``, everything else in ``state_dtype``, the result rounded to
    ``out_dtype``; the function ``torch.compile`` traces."""
    cfg = _Config(
        n_steps=n_steps,
        eps=eps,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        nonneg=nonneg,
        exact=w_grad == "exact",
        vanilla=is_vanilla(beta),
        recompute=False,
        state_dtype=state_dtype,
        conv_dtype=conv_dtype,
        out_dtype=out_dtype,
    )
    scalars = [v.reshape(()) if isinstance(v, torch.Tensor) else v for v in (beta, lam, step, norm)]
    return RistaIteration.apply(x, weight, *scalars, cfg)


# Dynamo keeps at most ``recompile_limit`` (8) graphs per function and then runs it eagerly;
# one network needs one graph per layer geometry, precision and gradient mode (an EDLNet-18 has
# about ten geometries), so calls raise the limit to this while they run.
RECOMPILE_LIMIT = 256


class CompiledPathUnavailable(RuntimeError):
    """``torch.compile`` could not build the compiled RISTA iteration on this machine."""


@contextlib.contextmanager
def _explained_compile_errors():
    """A failed compilation (no C++ compiler, an Inductor bug) names the way out."""
    from torch._dynamo.exc import BackendCompilerFailed
    from torch._inductor.exc import InductorError

    try:
        yield
    except (BackendCompilerFailed, InductorError) as e:
        raise CompiledPathUnavailable(
            "DictConv2d(impl='compiled') could not compile its RISTA iteration with torch.compile "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]}). It needs a working C++ compiler "
            "on CPU (Triton on CUDA); use impl='fast' (dl_options: {impl: fast}), the default."
        ) from e


@functools.cache
def _compiled():
    # sizes are static except the batch, which rista_compiled marks dynamic on every call
    return torch.compile(rista_iteration, dynamic=None)


def rista_compiled(
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
    conv_dtype: torch.dtype | str | None = "auto",
) -> torch.Tensor:
    """Unrolled RISTA through ``torch.compile``: same arguments and result as
    :func:`~edlnet.layers.rista_fast.rista_fast` (``norm``, ``conv_dtype`` included, no
    ``recompute``: the compiler decides what to save)."""
    check_iteration(n_steps, beta, eps, w_grad)
    state, conv = resolve_dtypes(x, weight, conv_dtype)
    if norm is not None and not isinstance(norm, torch.Tensor):
        norm = torch.tensor(float(norm), dtype=state, device=x.device)
    args = (x, weight, beta, lam, step, norm)
    options = dict(
        n_steps=int(n_steps),
        eps=float(eps),
        stride=pair(stride),
        padding=pair(padding),
        dilation=pair(dilation),
        groups=int(groups),
        nonneg=bool(nonneg),
        w_grad=w_grad,
        state_dtype=state,
        conv_dtype=conv,
        out_dtype=output_dtype(x, state, conv),
    )
    if torch.compiler.is_compiling():  # inside torch.compile(model): the outer graph fuses it
        with torch.autocast(x.device.type, enabled=False):
            return rista_iteration(*args, **options)
    limit = max(RECOMPILE_LIMIT, torch._dynamo.config.recompile_limit)
    # only the batch size is symbolic (one graph serves every batch, the last partial one too);
    # Dynamo's automatic dynamic shapes would also make channels and spatial sizes symbolic,
    # whose backward Inductor fails to compile for strided layers (torch 2.13)
    torch._dynamo.maybe_mark_dynamic(x, 0)
    settings = dict(recompile_limit=limit, automatic_dynamic_shapes=False)
    with (
        torch.autocast(x.device.type, enabled=False),
        torch._dynamo.config.patch(**settings),
        _explained_compile_errors(),
    ):
        return _compiled()(*args, **options)
