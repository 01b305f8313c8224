"""The base class every attack builds on: budget, box, eval mode, fp32 and gradient policy.

Conventions: inputs are images in [0, 1] and the model normalizes them itself,
so attacks never normalize; every eps is in pixel units and kept exactly (``8/255`` as a
fraction and as a float); attacks run in fp32 with the model in eval mode and autocast off,
and put every submodule's mode back afterwards; gradient attacks run under the requested
reweighting-gradient policy of the dictionary layers (``w_grad``).
"""

from __future__ import annotations

import abc
import contextlib
import inspect
import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from edlnet.layers.gradient_policy import W_GRAD_POLICIES, w_grad_policy

EpsLike = str | float | int | Fraction
NORMS = ("Linf", "L2", "L1", "L0")
# The budget of example attacks (:meth:`Attack.example`) per threat model of suites. L0 has
# none: no library attack crafts L0 perturbations itself.
EXAMPLE_EPS: dict[str, EpsLike] = {"Linf": "8/255", "L2": "1/2", "L1": 3}

# A per-example gradient whose norm falls below this fraction of its norm at the attack's first
# gradient evaluation counts as vanishing: the attack is then stepping on noise (sign of ~0), a
# masking pattern that exact-zero counts miss (docs/checks.md, input_gradients).
VANISHING_FRACTION = 1e-4

# Largest denominator tried when recovering a fraction from a float: 8/255 given as
# 0.03137254901960784 is stored back as "8/255", while a float without a small exact
# fraction keeps its exact binary value.
_MAX_DENOMINATOR = 10**6


def parse_eps(eps: EpsLike) -> tuple[Fraction, float]:
    """Parse a budget into ``(exact fraction, float)``.

    Accepts ``"8/255"``, ``"0.5"``, ``"1e-3"``, ``Fraction(8, 255)``, ints and floats. A float
    that equals a fraction with a denominator up to 10^6 (``8/255`` typed as a float) is
    recovered as that fraction, so records keep the value the user meant.
    """
    if isinstance(eps, bool):
        raise ValueError(f"eps must be a number or a string like '8/255', got {eps!r}")
    if isinstance(eps, Fraction):
        frac = eps
    elif isinstance(eps, numbers.Integral):
        frac = Fraction(int(eps))
    elif isinstance(eps, numbers.Real):
        value = float(eps)
        if not math.isfinite(value):
            raise ValueError(f"eps must be finite, got {eps!r}")
        frac = Fraction(value).limit_denominator(_MAX_DENOMINATOR)
        if float(frac) != value:
            frac = Fraction(value)
    elif isinstance(eps, str):
        frac = _parse_eps_string(eps)
    else:
        raise ValueError(f"eps must be a number or a string like '8/255', got {eps!r}")
    if frac < 0:
        raise ValueError(f"eps must be non-negative, got {eps!r}")
    return frac, float(frac)


def _parse_eps_string(text: str) -> Fraction:
    try:
        if "/" in text:
            num, den = text.split("/")
            return Fraction(num.strip()) / Fraction(den.strip())
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"cannot read eps {text!r}; write a number or a fraction such as '8/255' or '0.5'"
        ) from None


def perturbation_norm(delta: Tensor, norm: str) -> Tensor:
    """Per-example norm of a batch of perturbations (first dimension is the batch)."""
    flat = delta.reshape(delta.shape[0], -1)
    if norm == "Linf":
        return flat.abs().amax(dim=1) if flat.shape[1] else flat.new_zeros(flat.shape[0])
    if norm == "L2":
        return flat.norm(p=2, dim=1)
    if norm == "L1":
        return flat.abs().sum(dim=1)
    if norm == "L0":
        return (flat != 0).sum(dim=1).to(flat.dtype)
    raise ValueError(f"unknown norm {norm!r}; use one of {NORMS}")


def project(x: Tensor, x_adv: Tensor, eps: float, norm: str) -> Tensor:
    """Bring ``x_adv`` into the ``norm`` ball of radius ``eps`` around ``x`` and into [0, 1].

    Linf clamps coordinate-wise (the exact projection). L2 and L1 rescale the perturbation,
    which is the exact L2 projection and a valid (not closest) point for L1. The box clamp comes
    last and cannot break the budget: with x in [0, 1] it only shrinks each coordinate of the
    perturbation.
    """
    delta = x_adv - x
    if norm == "Linf":
        delta = delta.clamp(-eps, eps)
    elif norm in ("L2", "L1"):
        size = perturbation_norm(delta, norm)
        scale = torch.where(size > eps, eps / size.clamp_min(1e-30), torch.ones_like(size))
        delta = delta * scale.view(-1, *([1] * (delta.dim() - 1)))
    else:
        raise ValueError(f"cannot project onto an {norm} ball; use Linf, L2 or L1")
    return (x + delta).clamp(0.0, 1.0)


def robust_at(norms: Tensor, eps: EpsLike) -> Tensor:
    """Per-example robustness at budget ``eps`` from a minimal-norm attack's norms.

    Minimal-norm attacks report ``0`` for an example misclassified without perturbation and
    ``inf`` where no adversarial example was found, so an example is robust at ``eps`` exactly
    when its minimal adversarial norm exceeds ``eps``.
    """
    return norms > parse_eps(eps)[1]


class NotApplicable(ValueError):
    """The attack has nothing to work on in this model (e.g. a loss on reweighting layers for a
    model that has none). Suites record the entry as not applicable instead of failing."""


@dataclass
class AttackResult:
    """What an attack returns besides the adversarial batch.

    ``robust[i]`` is True when the model still predicts ``y[i]`` at ``x_adv[i]``; ``info`` holds
    attack-specific per-example data (norms, flags, logs) and, for gradient attacks,
    ``info["grad_stats"]``: how many per-example gradients were evaluated, and how many of them
    were non-finite or exactly zero (signs of gradient masking).
    """

    x_adv: Tensor
    robust: Tensor
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Fraction of examples still classified correctly after the attack."""
        return float(self.robust.float().mean()) if self.robust.numel() else float("nan")


@contextlib.contextmanager
def input_gradients_only(model: nn.Module) -> Iterator[None]:
    """Inside the block the model's parameters do not require gradients (restored on exit): an
    attack differentiates with respect to its input only.

    Why: autograd skips the weight gradients of built-in convolutions that nothing asked for,
    but a custom ``autograd.Function`` (the fused RISTA layer) only knows which of its inputs
    require gradients, so it computed the weight gradients of its 2T + 1 convolutions and
    threw them away. Measured on an EDLNet-10 width 16 (eval mode, batch 128, 2 threads, AMD
    EPYC): one attack step 0.78-0.81 s with trainable parameters, 0.60 s frozen, the input
    gradient bitwise the same. Only parameters that required gradients are touched, so nested
    blocks and frozen parameters come back as they were.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextlib.contextmanager
def attack_mode(model: nn.Module, w_grad: str | None, device_type: str = "cpu") -> Iterator[None]:
    """Eval mode, gradients on (for the input only: :func:`input_gradients_only`), autocast off
    and the ``w_grad`` policy, all undone on exit.

    Each submodule's own ``training`` flag is restored, not just the root's, so a model that
    keeps, say, a frozen BatchNorm in eval inside a training model comes back unchanged.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.enable_grad())
            stack.enter_context(input_gradients_only(model))
            for dev in {"cpu", device_type}:
                stack.enter_context(torch.autocast(device_type=dev, enabled=False))
            stack.enter_context(w_grad_policy(model, w_grad))
            yield
    finally:
        model.train(modes[0][1])
        for module, training in modes:
            if module.training != training:
                module.training = training


class Attack(abc.ABC):
    """Base class: ``attack(x, y) -> x_adv`` within the budget and the [0, 1] box.

    Args:
        model: classifier taking images in [0, 1] and returning logits.
        eps: budget in pixel units (``"8/255"``, a Fraction or a float), kept exactly.
            Minimal-norm attacks accept ``None`` (no budget: they report the norms they found).
        norm: ``"Linf"``, ``"L2"``, ``"L1"`` or ``"L0"``, among those the attack supports.
        w_grad: reweighting-gradient policy of the dictionary layers during the attack:
            ``"exact"``, ``"detached"`` or ``None`` (leave the model's own).

    Subclasses implement ``_perturb(x, y) -> (x_adv, info)`` and ``_settings()``; those that
    suites can name are registered (:func:`edlnet.attacks.registry.register_attack`).
    """

    # The attack's name in its settings (and so in evaluation records).
    name: ClassVar[str] = "attack"
    norms: ClassVar[tuple[str, ...]] = ("Linf", "L2")
    minimal_norm: ClassVar[bool] = False
    # Set by every registered attack (edlnet.attacks.registry): how suites name it, and whether
    # it follows gradients of the evaluated model.
    suite_name: ClassVar[str | None] = None
    follows_model_gradients: ClassVar[bool] = False
    # Small, fast settings of :meth:`example`, one dict per variant worth testing on its own
    # (a different code path, e.g. SurrogatePGD's twins); the contract tests build every
    # registered attack with each of them, in each of its norms.
    example_settings: ClassVar[tuple[dict[str, Any], ...]] = ({},)

    def __init__(
        self, model: nn.Module, *, eps: EpsLike | None, norm: str, w_grad: str | None = None
    ) -> None:
        if norm not in self.norms:
            raise ValueError(f"{self.name} supports norms {self.norms}, got {norm!r}")
        if w_grad is not None and w_grad not in W_GRAD_POLICIES:
            raise ValueError(f"unknown w_grad policy {w_grad!r}; use one of {W_GRAD_POLICIES} or None")
        if eps is None and not self.minimal_norm:
            raise ValueError(f"{self.name} needs a budget eps (e.g. eps='8/255')")
        self.model = model
        self.norm = norm
        self.w_grad = w_grad
        self.eps_fraction: Fraction | None
        self.eps: float | None
        self.eps_fraction, self.eps = parse_eps(eps) if eps is not None else (None, None)
        self._reset_grad_stats()

    @classmethod
    def example(cls, model: nn.Module, norm: str, variant: int = 0) -> Attack:
        """A small, fast instance on ``model`` in ``norm``, for tests and examples: budget
        ``EXAMPLE_EPS[norm]``, settings ``example_settings[variant]``. Attacks whose constructor
        takes more than a model (Transfer: a source attack) override it."""
        settings = dict(cls.example_settings[variant])
        if "norm" in inspect.signature(cls.__init__).parameters:
            settings["norm"] = norm  # single-norm attacks (CW, SparseFool) fix their own
        return cls(model, eps=EXAMPLE_EPS[norm], **settings)

    def _reset_grad_stats(self) -> None:
        self._grad_stats = {"evaluations": 0, "nonfinite": 0, "zero": 0, "vanishing": 0}
        self._first_norm: Tensor | None = None

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """Adversarial examples for ``(x, y)``, detached, within the budget and [0, 1]."""
        return self.run(x, y).x_adv

    def run(self, x: Tensor, y: Tensor) -> AttackResult:
        """Attack a batch and return the adversarial examples with per-example robustness."""
        x, y = _check_inputs(x, y)
        _check_fp32(self.model)
        self._reset_grad_stats()
        with attack_mode(self.model, self.w_grad, x.device.type):
            x_adv, info = self._perturb(x, y)
            x_adv = self._enforce_budget(x, x_adv.detach())
            x_adv, robust, invalid = judge(self.model, x, x_adv, y)
        if invalid:
            info["invalid_points"] = invalid
        if self._grad_stats["evaluations"]:
            info["grad_stats"] = dict(self._grad_stats)
        return AttackResult(x_adv=x_adv.detach(), robust=robust, info=info)

    def settings(self) -> dict[str, Any]:
        """Every setting of the attack as a JSON-able dict (eps as float and exact string)."""
        base: dict[str, Any] = {
            "name": self.name,
            "norm": self.norm,
            "eps": self.eps,
            "eps_exact": None if self.eps_fraction is None else str(self.eps_fraction),
            "w_grad": self.w_grad,
        }
        base.update(self._settings())
        return base

    @abc.abstractmethod
    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        """Craft adversarial examples; runs inside ``attack_mode``."""

    def _settings(self) -> dict[str, Any]:
        return {}

    def _enforce_budget(self, x: Tensor, x_adv: Tensor) -> Tensor:
        """Last guard on the budget: projection for budgeted attacks; for minimal-norm attacks
        an example whose perturbation exceeds eps falls back to the clean image, because
        shrinking it would not keep it adversarial."""
        if self.eps is None:
            return x_adv.clamp(0.0, 1.0)
        if self.minimal_norm:
            over = perturbation_norm(x_adv - x, self.norm) > self.eps
            x_adv = torch.where(over.view(-1, *([1] * (x.dim() - 1))), x, x_adv)
            return x_adv.clamp(0.0, 1.0)
        return project(x, x_adv, self.eps, self.norm)

    def _loss_and_grad(
        self, x_adv: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Logits, per-example loss and sanitized input gradient of the summed loss at ``x_adv``.

        Examples are independent in eval mode, so the gradient of the summed loss is the
        per-example gradient. Only the input gradient is computed: parameters' ``.grad`` stay
        untouched.
        """
        x_adv = x_adv.detach().requires_grad_(True)
        logits = self.model(x_adv)
        loss = loss_fn(logits, y)
        (grad,) = torch.autograd.grad(loss.sum(), x_adv, allow_unused=True)
        grad = torch.zeros_like(x_adv) if grad is None else grad
        return logits.detach(), loss.detach(), self._sanitize_grad(grad)

    def _sanitize_grad(self, grad: Tensor, count_zero: bool = True) -> Tensor:
        """Count and neutralize non-finite gradients.

        Exact gradients through the reweighting can overflow; a NaN would poison the iterate
        and an inf would break L2 normalization. NaN becomes 0 and +-inf the largest float, so
        sign-based steps keep the direction inf carried. The counts feed the suite's
        gradient-masking checks (``info["grad_stats"]``); ``count_zero=False`` is for
        gradients that are not plain input gradients (CW's, in tanh space), where zero is normal.
        """
        flat = grad.reshape(grad.shape[0], -1)
        finite = torch.isfinite(flat).all(dim=1)
        self._grad_stats["evaluations"] += grad.shape[0]
        self._grad_stats["nonfinite"] += int((~finite).sum())
        if count_zero:
            zero = (flat == 0).all(dim=1)
            self._grad_stats["zero"] += int(zero.sum())
            size = flat.nan_to_num(0.0, 0.0, 0.0).norm(dim=1)
            first = getattr(self, "_first_norm", None)
            if first is None or first.shape != size.shape:
                self._first_norm = size
            else:
                tiny = finite & ~zero & (size < VANISHING_FRACTION * first)
                self._grad_stats["vanishing"] += int(tiny.sum())
        if bool(finite.all()):
            return grad
        big = torch.finfo(grad.dtype).max
        return torch.nan_to_num(grad, nan=0.0, posinf=big, neginf=-big)


def judge(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> tuple[Tensor, Tensor, dict[str, int]]:
    """Per-example robustness at ``x_adv``, never crediting a break to a broken computation.

    A non-finite adversarial image is not an image: it falls back to the clean image, so it is
    never counted as a break. Non-finite logits at a valid image are a real failure of the model
    on an allowed input: the example counts as broken, whatever argmax makes of the NaNs. Both
    are counted in the returned dict, which the evaluation reports (docs/checks.md).
    """
    invalid: dict[str, int] = {}
    bad_image = ~torch.isfinite(x_adv.reshape(x_adv.shape[0], -1)).all(dim=1)
    if bool(bad_image.any()):
        invalid["nonfinite_images"] = int(bad_image.sum())
        x_adv = torch.where(bad_image.view(-1, *([1] * (x.dim() - 1))), x, x_adv)
    with torch.no_grad():
        logits = model(x_adv)
    bad_logits = ~torch.isfinite(logits).all(dim=1)
    robust = logits.argmax(dim=1) == y
    if bool(bad_logits.any()):
        invalid["nonfinite_logits"] = int(bad_logits.sum())
        robust = robust & ~bad_logits
    return x_adv, robust, invalid


def normalize_l2(grad: Tensor) -> Tensor:
    """Per-example unit-L2 direction; zero stays zero and huge values do not overflow."""
    flat = grad.reshape(grad.shape[0], -1)
    # Dividing by the max first keeps the squared sum finite for gradients near float max.
    peak = flat.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
    flat = flat / peak
    flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return flat.view_as(grad)


def _check_inputs(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if not torch.is_floating_point(x):
        raise ValueError(
            f"attack inputs must be float images in [0, 1], got dtype {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )
    x = x.detach().float()
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError(
            f"attack inputs must lie in [0, 1], got range [{float(x.min()):.4g}, "
            f"{float(x.max()):.4g}]; normalization belongs inside the model"
        )
    y = y.detach().long()
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    return x, y


def _check_fp32(model: nn.Module) -> None:
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if torch.is_floating_point(tensor) and tensor.dtype != torch.float32:
            raise ValueError(
                f"attacks run in fp32 but {name} is {tensor.dtype}; call model.float() before evaluating"
            )
