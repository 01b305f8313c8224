"""``DictConv2d``: a drop-in ``nn.Conv2d`` replacement whose output is a sparse code computed by
unrolled RISTA (Vanilla, Robust or Elastic dictionary learning).

The weight has the ``nn.Conv2d`` shape (D, C/groups, k, k) and *is* the dictionary A, so weights
move freely between ``nn.Conv2d`` and every mode; with ``n_steps=0`` the layer is exactly the
convolution.

Dictionary scale (``normalize``). With BatchNorm after each layer the scale of A is free, and in
Elastic layers it drifts (L = ‖A‖² grew ~100× in 3 epochs in a prototype), which pushes a fixed
step out of its convergent range or, with η = 1/L, shrinks the ℓ1 part of each step to nothing.
By default the layer therefore runs Algorithm 1 on the spectrally normalized dictionary
Â = A/‖A‖₂ and multiplies the code by ‖A‖₂:

    DictConv2d(x) = ‖A‖₂ · RISTA(x; Â)          (normalize=True, the default)

which leaves z₀ = A(x) unchanged (so ``n_steps=0`` is still the convolution), keeps
η·‖Â‖² = ``step`` fixed whatever the weight scale, and makes λ and ε act in the units of the
layer's input. ``normalize=False`` runs Algorithm 1 on A itself. ‖A‖₂ is tracked like
BatchNorm's running statistics: refreshed by two warm-started power iterations in every
training-mode forward (and differentiable there), stored in the ``dict_norm`` buffer, and used
as stored in eval mode, so eval outputs are deterministic and survive save/load exactly.

Implementation (``impl``). ``"fast"`` (the default) runs :func:`~edlnet.layers.rista_fast.rista_fast`,
one autograd function with a hand-written backward pass that gives the same outputs and
gradients as the reference (tested in float64) at close to the cost of its convolutions and with
far less saved memory. ``recompute`` chooses between saving the layer's iterates for the
backward pass and re-running the layer there: ``True`` for every layer (least memory, one more
forward of the layer), ``False`` never, and ``"auto"`` (the default) for the layers whose
convolutions are cheap for the memory their iterates hold — at most ``RECOMPUTE_MACS``
multiply-adds per code entry (C/groups·k², e.g. the RGB stem, 27, and 1×1 projection shortcuts
of up to 256 input channels). In ResNet-18 those layers hold a third of the iterate memory of the
network for ~1% of its time. ``"reference"`` runs the autograd-traced :func:`rista` (needed for
double backward; also used whenever objective terms are requested). ``"compiled"`` runs the
same iteration through ``torch.compile`` (:mod:`~edlnet.layers.rista_compiled`). A training run
may run its steps with another implementation than the layers' own (``layer_impl`` of
``edlnet train``; :mod:`~edlnet.layers.impl_choice`) without changing this attribute.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .conv_ops import pair
from .impl_choice import effective_impl, fall_back
from .power_iteration import operator_norm, refresh_vector
from .rista import RistaTerms, rista
from .rista_compiled import CompiledPathUnavailable, rista_compiled
from .rista_fast import rista_fast

MODES = ("vanilla", "robust", "elastic")
FIXED_BETA = {"vanilla": 1.0, "robust": 0.0}
BETA_CLIP = 1e-3  # sigmoid can't reach 0 or 1; initial β is clipped to [0.001, 0.999]

# Defaults, chosen from benchmarks/stability.py (see docs/stability.md).
DEFAULT_N_STEPS = 2
DEFAULT_LAM = 0.1
DEFAULT_BETA = 0.5
DEFAULT_EPS = 0.1
DEFAULT_STEP: float | str = "majorize"
STEP_RULES = ("auto", "majorize")
IMPLS = ("fast", "compiled", "reference")
RECOMPUTE_MACS = 256


def _logit(p: float) -> float:
    p = min(max(p, BETA_CLIP), 1 - BETA_CLIP)
    return math.log(p / (1 - p))


class DictConv2d(nn.Module):
    """Dictionary-learning convolution, solved by ``n_steps`` RISTA updates after z₀ = A(x).

    Args:
        mode: ``"vanilla"`` (β = 1, ISTA on the ℓ2 objective: SDNet), ``"robust"`` (β = 0, ℓ1
            reconstruction) or ``"elastic"`` (β learnable per layer, kept in (0, 1) by a sigmoid).
        n_steps: updates after z₀; the paper's T is n_steps + 1 (default 2, i.e. T = 3).
        lam: sparsity weight λ.   beta: initial β in elastic mode.
        step: η as a number; ``"auto"`` for η = 1/L with L = ‖A‖² (power iteration); or
            ``"majorize"`` for η = 1/(L·(β + (1−β)/(2ε))), the largest step for which every
            RISTA step provably descends (Lemma 4.1 with w ≤ 1/(2ε)).
        eps: ε in w = 1/(2(|r| + ε)).   nonneg: non-negative (ReLU-style) thresholding.
        w_grad: ``"exact"`` (autograd through w) or ``"detached"`` (w constant in backward).
        normalize: run RISTA on A/‖A‖₂ and rescale the code (see module docstring).
        impl: ``"fast"`` (hand-written backward, the default), ``"compiled"`` (the same
            iteration through ``torch.compile``: fused elementwise passes, fastest at narrow
            widths and in bf16; compiles on first use, equal to the others up to rounding) or
            ``"reference"`` (autograd through :func:`rista`; supports double backward).
        recompute: with ``impl="fast"``: ``True`` saves only the input and re-runs the layer
            in the backward pass (less memory, one more forward's worth of convolutions);
            ``False`` saves its iterates; ``"auto"`` recomputes when the layer's convolutions
            cost at most ``RECOMPUTE_MACS`` multiply-adds per code entry (see module docstring).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = False,
        *,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        mode: str = "elastic",
        n_steps: int = DEFAULT_N_STEPS,
        lam: float = DEFAULT_LAM,
        beta: float = DEFAULT_BETA,
        step: float | str = DEFAULT_STEP,
        eps: float = DEFAULT_EPS,
        nonneg: bool = False,
        w_grad: str = "exact",
        normalize: bool = True,
        impl: str = "fast",
        recompute: bool | str = "auto",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must be divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size)
        self.stride, self.padding, self.dilation = pair(stride), pair(padding), pair(dilation)
        factory = dict(device=device, dtype=dtype)
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size, **factory)
        )
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        # β lives here in every mode so that state_dict keys do not depend on the mode; it is a
        # trainable parameter only in elastic mode.
        self.beta_logit = nn.Parameter(torch.tensor(_logit(beta), **factory))
        self.register_buffer("dict_norm", torch.zeros((), **factory))
        self._power_vector: torch.Tensor | None = None
        self.n_steps, self.lam, self.step, self.eps = int(n_steps), float(lam), step, float(eps)
        self.nonneg, self.normalize = bool(nonneg), bool(normalize)
        self.w_grad = w_grad
        self.impl, self.recompute = impl, recompute
        self.set_mode(mode)
        self.reset_parameters()

    # -- configuration -------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """The initialization of ``nn.Conv2d``, so fresh layers match fresh convolutions."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)
        self.dict_norm.zero_()
        self._power_vector = None
        self._norm_known = False

    def set_mode(self, mode: str, beta: float | None = None) -> None:
        """Switch between vanilla, robust and elastic without touching the weights.

        ``beta`` re-initializes β (elastic mode only); otherwise its last value is kept."""
        if mode not in MODES:
            raise ValueError(f"unknown dictionary mode {mode!r}; use one of {MODES}")
        self.mode = mode
        if beta is not None:
            with torch.no_grad():
                self.beta_logit.fill_(_logit(beta))
        self.beta_logit.requires_grad_(mode == "elastic")

    def beta_value(self) -> float:
        """β as a plain number (for logging and display)."""
        b = self.beta
        return float(b.detach()) if isinstance(b, torch.Tensor) else float(b)

    @property
    def beta(self) -> float | torch.Tensor:
        """β as used by RISTA: a constant in vanilla/robust mode, a tensor in elastic mode."""
        if self.mode in FIXED_BETA:
            return FIXED_BETA[self.mode]
        return torch.sigmoid(self.beta_logit)

    def config(self) -> dict[str, Any]:
        """Everything besides tensors that defines the layer (saved with checkpoints)."""
        return dict(
            mode=self.mode,
            n_steps=self.n_steps,
            lam=self.lam,
            step=self.step,
            eps=self.eps,
            nonneg=self.nonneg,
            w_grad=self.w_grad,
            normalize=self.normalize,
            impl=self.impl,
            recompute=self.recompute,
        )

    def configure(self, **options: Any) -> None:
        """Set options by name (``mode``, ``n_steps``, ``lam``, ``beta``, ``step``, ``eps``,
        ``nonneg``, ``w_grad``, ``normalize``, ``impl``, ``recompute``)."""
        unknown = set(options) - set(self.config()) - {"beta"}
        if unknown:
            raise ValueError(
                f"unknown DictConv2d options {sorted(unknown)}; "
                f"known: {sorted(set(self.config()) | {'beta'})}"
            )
        mode = options.pop("mode", self.mode)
        beta = options.pop("beta", None)
        for k, v in options.items():
            setattr(self, k, v)
        self.set_mode(mode, beta)

    @property
    def w_grad(self) -> str:
        return self._w_grad

    @w_grad.setter
    def w_grad(self, value: str) -> None:
        if value not in ("exact", "detached"):
            raise ValueError(f"w_grad must be 'exact' or 'detached', got {value!r}")
        self._w_grad = value

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {value!r}")
        self._impl = value

    @property
    def recompute(self) -> bool | str:
        return self._recompute

    @recompute.setter
    def recompute(self, value: bool | str) -> None:
        if not (value is True or value is False or value == "auto"):
            raise ValueError(f"recompute must be True, False or 'auto', got {value!r}")
        self._recompute = value

    def recomputes(self) -> bool:
        """Whether the fast path re-runs this layer in the backward pass (resolves ``"auto"``)."""
        if self.recompute == "auto":
            macs = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
            return macs <= RECOMPUTE_MACS
        return bool(self.recompute)

    # -- dictionary norm -----------------------------------------------------------------------
    def _geometry(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def _operator_norm(self, x: torch.Tensor) -> torch.Tensor:
        """‖A‖₂: refreshed (differentiably) in training mode, read from the buffer in eval."""
        if not self.training and self._norm_known:
            return self.dict_norm
        geom = self._geometry()
        v = refresh_vector(self.weight, self._power_vector, (1, x.shape[1], *x.shape[-2:]), x, geom)
        self._power_vector = v
        weight = self.weight if self.training else self.weight.detach()
        sigma = operator_norm(weight, v, geom)
        with torch.no_grad():
            self.dict_norm.copy_(sigma.detach())
        self._norm_known = True
        return sigma

    def refresh_norm(self, input_size: tuple[int, int]) -> float:
        """Recompute ‖A‖₂ from scratch for inputs of spatial size ``input_size`` and store it
        (use after editing weights by hand; training-mode forwards keep it current)."""
        self._power_vector = None
        self._norm_known = False
        probe = self.weight.new_zeros(1, self.in_channels, *input_size)
        with torch.no_grad():
            self._operator_norm(probe)
        return float(self.dict_norm)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # A stored norm belongs to the stored weights: use it as is (exact save/load round trip).
        self._norm_known = bool(float(self.dict_norm) > 0)
        self._power_vector = None

    # -- forward -------------------------------------------------------------------------------
    def _norm_and_step(self, x: torch.Tensor) -> tuple[torch.Tensor | None, Any]:
        """‖A‖₂ when the dictionary is normalized (else None), and η."""
        needs_norm = self.normalize or self.step in STEP_RULES
        sigma = self._operator_norm(x) if needs_norm else None
        if self.step in STEP_RULES:
            eta = 1.0 if self.normalize else 1.0 / sigma.detach() ** 2
            if self.step == "majorize" and self.mode != "vanilla":
                # Lemma 4.1's argument needs η·‖A‖²·max(β + (1−β)w) ≤ 1, and w ≤ 1/(2ε).
                eta = eta / (self.beta + (1 - self.beta) / (2 * self.eps))
        else:
            eta = float(self.step)
        return (sigma if self.normalize else None), eta

    def _solver_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float, Any]:
        """The dictionary RISTA runs on, the factor its code is multiplied by, and η."""
        sigma, eta = self._norm_and_step(x)
        weight, scale = (self.weight / sigma, sigma) if sigma is not None else (self.weight, 1.0)
        return weight, scale, eta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_steps == 0:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        z = self.solve(x)
        return z if self.bias is None else z + self.bias.view(1, -1, 1, 1)

    def solve(
        self, x: torch.Tensor, return_terms: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, RistaTerms]:
        """The bias-free code (rescaled by ‖A‖₂ when normalized); with ``return_terms`` also the
        per-step objective terms of the problem RISTA solves (on the normalized dictionary)."""
        impl = effective_impl(self.impl)  # a run's training steps may choose it (impl_choice)
        if impl in ("fast", "compiled") and not return_terms:
            # both divide by ‖A‖₂ and rescale the code themselves (see rista_fast's norm)
            sigma, eta = self._norm_and_step(x)
            options = dict(
                n_steps=self.n_steps,
                beta=self.beta,
                lam=self.lam,
                step=eta,
                eps=self.eps,
                nonneg=self.nonneg,
                w_grad=self.w_grad,
                norm=sigma,
                **self._geometry(),
            )
            if impl == "compiled":
                try:
                    return rista_compiled(x, self.weight, **options)
                except CompiledPathUnavailable as e:
                    if not fall_back(e):
                        raise
            return rista_fast(x, self.weight, recompute=self.recomputes(), **options)
        weight, scale, eta = self._solver_inputs(x)
        out = rista(
            x,
            weight,
            n_steps=self.n_steps,
            beta=self.beta,
            lam=self.lam,
            step=eta,
            eps=self.eps,
            nonneg=self.nonneg,
            w_grad=self.w_grad,
            return_terms=return_terms,
            **self._geometry(),
        )
        if return_terms:
            z, terms = out
            return z * scale, terms
        return out * scale

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        beta = f"{self.beta_value():.3f}"
        return (
            s + f", mode={self.mode}, n_steps={self.n_steps}, lam={self.lam}, beta={beta}, "
            f"step={self.step}, eps={self.eps}, nonneg={self.nonneg}, w_grad={self.w_grad}, "
            f"normalize={self.normalize}, impl={self.impl}, recompute={self.recompute}"
        )


def dict_layers(model: nn.Module) -> list[tuple[str, DictConv2d]]:
    """All dictionary layers of a model with their qualified names, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, DictConv2d)]


def set_mode(model: nn.Module, mode: str, beta: float | None = None) -> nn.Module:
    """Switch every dictionary layer of ``model`` to ``mode`` without touching its weights
    (the paper's two-stage training: Vanilla DL, then Elastic DL on the same weights).

    Returns the newly trainable parameters (β of each layer when switching to elastic) via
    ``model``'s ``parameters()`` as usual; an optimizer built before the switch must be given
    them (see ``edlnet.train``)."""
    layers = dict_layers(model)
    if not layers:
        raise ValueError(
            "set_mode: the model has no DictConv2d layers; build it with "
            "create_model(..., dl='vanilla') or edlnet.convert(model, mode=...)"
        )
    for _, m in layers:
        m.set_mode(mode, beta)
    return model


def betas(model: nn.Module) -> dict[str, float]:
    """β of every dictionary layer (1.0 for vanilla, 0.0 for robust), for logging."""
    return {n: m.beta_value() for n, m in dict_layers(model)}
