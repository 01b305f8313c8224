"""Which RISTA implementation the training steps of a run use, chosen once per run.

Why. ``impl="compiled"`` (:mod:`edlnet.layers.rista_compiled`) brings narrow layers close to
their convolution floor, and under bf16 it is the only path whose elementwise work shrinks with
the convolutions; but it rounds differently from the eager paths, compiles on first use (tens of
seconds per layer geometry on a CPU) and needs a C++ compiler (Triton on CUDA). So a run picks
it for its *training steps* when they are in low precision and the device can compile
(``layer_impl: auto``, the default of ``edlnet train``); fp32 training keeps the eager fast path
(its results are the float64-tested ones and the recorded fp32 numbers stay unchanged), and the
validation attacks run outside the steps, in fp32 on each layer's own ``impl``.

How. :func:`use_impl` sets the implementation of every layer built with the default
``impl="fast"`` for the code inside it (layers built with another ``impl`` keep theirs: a
``"reference"`` layer may be there for double backward). It changes no layer attribute, so
checkpoints keep the layers' own ``impl`` and evaluating one runs the tested default. Where a
compilation fails inside ``use_impl(..., fallback=True)`` the layer runs the fast path instead,
and every later call does too (:func:`fallback_reason` says why).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator

import torch

REQUESTS = ("auto", "fast", "compiled", "reference")
LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}

_step_impl: str | None = None  # the implementation use_impl sets, None outside it
_fallback = False  # may a failed compilation fall back to the fast path?
_fallback_reason: str | None = None  # why it did, once it has


@dataclasses.dataclass(frozen=True)
class ImplChoice:
    """The implementation of a run's training steps and why it was chosen."""

    requested: str
    impl: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def compiler_available(device_type: str) -> tuple[bool, str]:
    """Whether ``torch.compile``'s Inductor backend can build kernels on devices of this type
    (a C++ compiler on CPU, Triton on CUDA), and what was found."""
    if device_type == "cpu":
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler

            return True, f"C++ compiler {get_cpp_compiler()}"
        except Exception as e:  # InvalidCxxCompiler, or an Inductor without this helper
            return False, f"no C++ compiler for torch.compile ({type(e).__name__}; install g++ or set CXX)"
    if device_type == "cuda":
        try:
            from torch.utils._triton import has_triton

            ok = bool(has_triton())
        except ImportError:
            ok = False
        return ok, "Triton" if ok else "no Triton for torch.compile on CUDA"
    return False, f"torch.compile is not used on {device_type} devices"


def choose_impl(
    requested: str, precision: str, device: torch.device, layer_option: str | None = None
) -> ImplChoice:
    """The implementation of a run's training steps. ``requested`` is the run's ``layer_impl``
    (``auto`` or an implementation), ``layer_option`` the ``impl`` its ``dl_options`` give the
    layers, if any. ``auto``: the layers' own option when given; else ``compiled`` for bf16/fp16
    steps whose convolutions are native on the device and where Inductor can compile; else
    ``fast``."""
    from .rista_fast import native_low_precision

    if requested not in REQUESTS:
        raise ValueError(f"layer_impl must be one of {REQUESTS}, got {requested!r}")
    if requested != "auto":
        return ImplChoice(requested, requested, "requested")
    if layer_option is not None:
        return ImplChoice(requested, layer_option, "the layers' own impl (dl_options.impl)")
    low = LOW_PRECISION.get(precision)
    if low is None:
        return ImplChoice(requested, "fast", f"{precision} steps: the eager fast path (float64-tested)")
    if not native_low_precision(device.type, low):
        return ImplChoice(
            requested,
            "fast",
            f"{precision} convolutions are not native on this {device.type} (the layers convolve in fp32)",
        )
    ok, found = compiler_available(device.type)
    if not ok:
        return ImplChoice(requested, "fast", found)
    return ImplChoice(requested, "compiled", f"{precision} steps, {found}")


@contextlib.contextmanager
def use_impl(impl: str | None, fallback: bool = False) -> Iterator[None]:
    """Run the default-``impl`` layers inside with ``impl`` (None: leave them alone); with
    ``fallback``, a compilation that fails switches them to the fast path for good."""
    global _step_impl, _fallback
    saved = _step_impl, _fallback
    if impl is not None:
        _step_impl, _fallback = impl, fallback
    try:
        yield
    finally:
        _step_impl, _fallback = saved


def after_fallback(impl: str) -> str:
    """``impl``, or ``fast`` for ``compiled`` once a compilation has fallen back in this process."""
    return "fast" if impl == "compiled" and _fallback_reason is not None else impl


def effective_impl(own: str) -> str:
    """The implementation a layer whose ``impl`` is ``own`` runs now."""
    if own != "fast" or _step_impl is None:
        return own
    return after_fallback(_step_impl)


def fall_back(error: Exception) -> bool:
    """Called by a layer whose compilation failed: True (and every later compiled call runs the
    fast path) when the surrounding :func:`use_impl` allows it, else False (re-raise)."""
    global _fallback_reason
    if not _fallback:
        return False
    if _fallback_reason is None:
        _fallback_reason = str(error).splitlines()[0]
        warnings.warn(
            f"impl='compiled' is unavailable, the training steps use impl='fast': {_fallback_reason}",
            RuntimeWarning,
            stacklevel=3,
        )
    return True


def fallback_reason() -> str | None:
    """Why the compiled path fell back to the fast path in this process, or None."""
    return _fallback_reason


def reset_fallback() -> None:
    """Forget an earlier fallback (tests; a process that installed a compiler meanwhile)."""
    global _fallback_reason
    _fallback_reason = None
