"""AutoAttack through the reference implementation (Croce & Hein, ICML 2020)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from . import _reference
from .base import Attack, EpsLike
from .registry import register_attack

VERSIONS = ("standard", "plus", "rand", "custom")
REFERENCE_ATTACKS = ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
# The reference hard-codes 9 target classes (CIFAR-10); fewer classes need fewer targets.
_DEFAULT_TARGETS = 9
_ACCURACY_LINE = re.compile(r"robust accuracy after ([\w-]+): ([\d.]+)%")
_CLEAN_LINE = re.compile(r"initial accuracy: ([\d.]+)%")


@register_attack
class AutoAttack(Attack):
    """AutoAttack (Croce & Hein, "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks", ICML 2020), run by the reference code
    (PyPI ``pyautoattack``, a dependency of edlnet) under this library's conventions: eval
    mode, fp32, the requested ``w_grad`` policy, the caller's RNG stream preserved.

    ``version="standard"`` (default) is APGD-CE, APGD-T, FAB-T and Square, cascaded on the
    points still robust; ``parts`` runs only some of a version's attacks with that version's
    settings (``parts=["square"]`` is exactly standard's Square); ``"plus"`` and ``"rand"`` are the reference's other versions; giving
    ``attacks`` (a name or a list from ``REFERENCE_ATTACKS``, e.g. ``["apgd-ce", "apgd-t"]`` or
    ``"square"``) selects ``version="custom"``. Norms: Linf (default), L2, L1.

    ``n_classes`` sets the number of target classes of the targeted attacks
    (``min(9, n_classes - 1)``; inferred from the model's output when omitted).
    ``n_iter``, ``n_restarts`` and ``n_queries`` override the reference's budgets (100
    iterations, version-specific restarts, 5000 Square queries) for quick runs; leave them
    unset for the standard evaluation. ``seed=0`` makes runs reproducible (``None`` lets the
    reference seed from the clock).

    ``run`` returns in ``info``: ``flags`` (the reference's own warnings, among them its
    gradient-masking checks: randomized or dynamic defense, zero gradients, probability
    outputs, Square beating the white-box attacks), ``log`` (all of its lines),
    ``robust_accuracy`` (clean and after each attack, parsed from its log) and ``attacks``.
    """

    name = "autoattack"
    norms = ("Linf", "L2", "L1")
    suite_name = "autoattack"
    follows_model_gradients = True
    example_settings = ({"attacks": ["apgd-ce", "apgd-t"], "n_iter": 2, "n_classes": 10},)

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: EpsLike,
        norm: str = "Linf",
        version: str | None = None,
        attacks: str | Sequence[str] | None = None,
        seed: int | None = 0,
        n_classes: int | None = None,
        n_target_classes: int | None = None,
        n_iter: int | None = None,
        n_restarts: int | None = None,
        n_queries: int | None = None,
        batch_size: int = 250,
        w_grad: str | None = None,
        parts: Sequence[str] | None = None,
    ) -> None:
        super().__init__(model, eps=eps, norm=norm, w_grad=w_grad)
        if isinstance(attacks, str):
            attacks = [attacks]
        if attacks is not None:
            unknown = [a for a in attacks if a not in REFERENCE_ATTACKS]
            if unknown or not attacks:
                raise ValueError(
                    f"unknown AutoAttack attacks {unknown or attacks}; choose from {REFERENCE_ATTACKS}"
                )
        version = version or ("custom" if attacks is not None else "standard")
        if version not in VERSIONS:
            raise ValueError(f"unknown AutoAttack version {version!r}; use one of {VERSIONS}")
        if (version == "custom") != (attacks is not None):
            raise ValueError(
                "give attacks=[...] exactly when version='custom' "
                f"(got version={version!r}, attacks={attacks!r})"
            )
        if parts is not None:
            unknown = [a for a in parts if a not in REFERENCE_ATTACKS]
            if unknown or not parts or version == "custom":
                raise ValueError(
                    f"parts={list(parts)!r} selects attacks of a named version with that "
                    f"version's settings; choose from {REFERENCE_ATTACKS} and a version "
                    "other than custom"
                )
        self.parts = list(parts) if parts is not None else None
        if n_classes is not None and n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.version = version
        self.attacks = list(attacks) if attacks is not None else None
        self.seed = seed
        self.n_classes = n_classes
        self.n_target_classes = n_target_classes
        self.n_iter = n_iter
        self.n_restarts = n_restarts
        self.n_queries = n_queries
        self.batch_size = int(batch_size)

    def _settings(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "attacks": self.attacks,
            "seed": self.seed,
            "n_classes": self.n_classes,
            "n_target_classes": self.n_target_classes,
            "n_iter": self.n_iter,
            "n_restarts": self.n_restarts,
            "n_queries": self.n_queries,
            "batch_size": self.batch_size,
            "parts": self.parts,
            "reference_version": _reference.version(),
        }

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        reference = _reference.load("autoattack")
        checks = _reference.load("checks")
        n_classes = self.n_classes
        if n_classes is None:
            with torch.no_grad():
                n_classes = int(self.model(x[:1]).shape[1])
        guard = GradientGuard(self.model)
        aa = reference.AutoAttack(
            guard,
            attacks=self.attacks,
            device=x.device,
            eps=self.eps,
            norm=self.norm,
            seed=self.seed,
            version=self.version,
        )
        self._configure(aa, n_classes)
        if self.parts is not None:
            # Run some of a named version's attacks with that version's own settings (restarts,
            # targets): "custom" would use the reference's defaults instead, which differ.
            aa.attacks_to_run = [a for a in aa.attacks_to_run if a in self.parts]
        # The reference counts autograd calls in a module-level dict that it never resets,
        # so one dynamic model would flag every later one; start from zero.
        for key in checks.funcs:
            checks.funcs[key] = 0
        # Its dynamic-defense check installs and then clears sys.settrace, which would
        # silently switch off a debugger or coverage; put the caller's trace back.
        trace = sys.gettrace()
        try:
            with _reference.capture_log() as records, _reference.preserve_rng(x.device):
                x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=self.batch_size)
        finally:
            sys.settrace(trace)
        lines = [record.getMessage() for record in records]
        # The reference repeats a warning once per batch and restart; keep each once, in order.
        flags = list(
            dict.fromkeys(record.getMessage() for record in records if record.levelno >= logging.WARNING)
        )
        if guard.stats["nonfinite"]:
            flags.append(
                f"edlnet: {guard.stats['nonfinite']} of {guard.stats['evaluations']} per-example "
                "input gradients inside AutoAttack were not finite (set to zero before the "
                "reference saw them; docs/checks.md#autoattack_flags)"
            )
        self._grad_stats["evaluations"] += guard.stats["evaluations"]
        self._grad_stats["nonfinite"] += guard.stats["nonfinite"]
        self._grad_stats["zero"] += guard.stats["zero"]
        return x_adv, {
            "flags": flags,
            "log": lines,
            "robust_accuracy": _parse_accuracy(lines),
            "attacks": list(aa.attacks_to_run),
            "n_classes": n_classes,
            "policy": self.w_grad or "model",
        }

    def _configure(self, aa: Any, n_classes: int) -> None:
        targets = self.n_target_classes or min(_DEFAULT_TARGETS, n_classes - 1)
        aa.apgd_targeted.n_target_classes = targets
        aa.fab.n_target_classes = targets
        if self.n_iter is not None:
            for apgd in (aa.apgd, aa.apgd_targeted):
                _set_apgd_iterations(apgd, self.n_iter)
            aa.fab.n_iter = self.n_iter
        if self.n_restarts is not None:
            for attack in (aa.apgd, aa.apgd_targeted, aa.fab, aa.square):
                attack.n_restarts = self.n_restarts
        if self.n_queries is not None:
            aa.square.n_queries = self.n_queries


class GradientGuard(nn.Module):
    """The model as the reference AutoAttack sees it: same outputs, but every input gradient
    passes a hook that counts non-finite and all-zero per-example gradients and replaces
    NaN/inf by zero. The reference has no such guard: a NaN gradient would make its iterate NaN
    and a NaN image can be scored as misclassified, a "break" that is an arithmetic failure."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.stats = {"evaluations": 0, "nonfinite": 0, "zero": 0}

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad:
            x.register_hook(self._sanitize)
        return self.model(x)

    def _sanitize(self, grad: Tensor) -> Tensor:
        flat = grad.reshape(grad.shape[0], -1)
        finite = torch.isfinite(flat).all(dim=1)
        self.stats["evaluations"] += grad.shape[0]
        self.stats["nonfinite"] += int((~finite).sum())
        self.stats["zero"] += int((flat == 0).all(dim=1).sum())
        if bool(finite.all()):
            return grad
        # NaN carries no direction: 0. An infinite coordinate dominates its example's gradient:
        # keep that limit direction (±1 there, 0 elsewhere) rather than zeroing the very pixels
        # the loss is most sensitive to, which would make the exact-gradient run look robust.
        inf = torch.isinf(flat)
        limit = torch.where(inf, flat.sign(), torch.zeros_like(flat))
        clean = torch.where(inf.any(dim=1, keepdim=True), limit, flat.nan_to_num(0.0))
        return clean.view_as(grad)


def _set_apgd_iterations(apgd: Any, n_iter: int) -> None:
    """APGD derives its checkpoint schedule from n_iter in its constructor; keep it consistent
    (same formulas as the reference) when overriding n_iter afterwards."""
    apgd.n_iter = n_iter
    apgd.n_iter_orig = n_iter
    apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
    apgd.n_iter_min = max(int(0.06 * n_iter), 1)
    apgd.size_decr = max(int(0.03 * n_iter), 1)


def _parse_accuracy(lines: list[str]) -> dict[str, float]:
    accuracy: dict[str, float] = {}
    for line in lines:
        if match := _CLEAN_LINE.search(line):
            accuracy["clean"] = float(match.group(1)) / 100
        elif match := _ACCURACY_LINE.search(line):
            accuracy[match.group(1).lower()] = float(match.group(2)) / 100
    return accuracy
