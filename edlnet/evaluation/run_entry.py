"""Run one entry on one batch: the clean pass, an attack, a corruption, or the gradient probe.

The unit of work (and of resuming and sharding) is an (entry, batch) pair (see
:mod:`edlnet.evaluation.batches`); its outcome is a
:class:`~edlnet.evaluation.batch_result.BatchResult`.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor, nn

from edlnet.attacks import Adaptive, AttackResult, attack_mode, parse_eps
from edlnet.attacks.base import NotApplicable
from edlnet.layers.gradient_policy import W_GRAD_POLICIES, has_w_grad_policy

from .attack_factory import build_attack
from .autoattack_split import is_split_autoattack, run_autoattack_split
from .batch_result import BatchResult
from .batches import batch_seed
from .corruptions import corrupt
from .probe import gradient_probe
from .suite import Entry


def policies_of(model: nn.Module) -> tuple[str | None, ...]:
    """The reweighting-gradient policies worth probing: both for dictionary networks."""
    return W_GRAD_POLICIES if has_w_grad_policy(model) else (None,)


def run_entry_on_batch(
    entry: Entry,
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    batch: int,
    start: int,
    seed: int,
    clean: list[bool | None] | None = None,
    surrogate: nn.Module | None = None,
    fd_model: nn.Module | None = None,
    alive: list[bool] | None = None,
) -> BatchResult:
    """Evaluate ``entry`` on the batch ``x, y`` (examples ``start..start+len-1``).

    ``clean`` is the clean entry's result on the same batch; attacks and the probe only
    touch clean-correct examples (an example misclassified as is is not robust, so attacking
    it would change nothing but the cost). ``alive`` (cascaded entries) further restricts them
    to the examples earlier attacks left robust; the others are recorded as broken, and
    ``values["ran"]`` says which examples the entry itself attacked.
    """
    t0 = time.perf_counter()
    n = x.shape[0]
    indices = range(start, start + n)
    inside = [entry.limit is None or i < entry.limit for i in indices]
    outcome = BatchResult(
        entry_name=entry.name, batch=batch, start=start, stop=start + n, robust=[None] * n, seconds=0.0
    )
    if entry.kind in ("clean", "corruption"):
        xb = (
            x
            if entry.kind == "clean"
            else corrupt(x, entry.corruption, entry.severity, seed=seed, indices=list(indices))
        )
        correct = _predict(model, xb) == y
        outcome.robust = [bool(c) if ok else None for c, ok in zip(correct.tolist(), inside)]
    else:
        if clean is None:
            raise ValueError(f"entry {entry.name!r} needs the clean result of its batch")
        todo = [i for i in range(n) if inside[i] and clean[i] and (alive is None or alive[i])]
        outcome.robust = [False if inside[i] else None for i in range(n)]
        if entry.kind == "attack":
            outcome.values["ran"] = [i in todo if inside[i] else None for i in range(n)]
            _run_attack(entry, model, x, y, todo, outcome, batch_seed(seed, batch), surrogate)
        elif entry.kind == "probe":
            _run_probe(entry, model, fd_model or model, x, y, todo, outcome, batch_seed(seed, batch))
        else:
            raise ValueError(f"unknown entry kind {entry.kind!r}")
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _predict(model: nn.Module, x: Tensor) -> Tensor:
    # attack_mode: eval mode, fp32 without autocast, every submodule's mode restored after.
    with attack_mode(model, None, x.device.type), torch.no_grad():
        return model(x).argmax(dim=1)


def _run_attack(
    entry: Entry,
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    todo: list[int],
    outcome: BatchResult,
    seed: int,
    surrogate: nn.Module | None,
) -> None:
    if is_split_autoattack(entry):
        return run_autoattack_split(entry, model, x, y, todo, outcome, seed)
    try:
        attack = build_attack(entry, model, seed=seed, surrogate=surrogate)
    except NotApplicable as e:
        # Nothing to attack through (e.g. a residual loss on a model without reweighting
        # layers): the entry evaluates no example, so it neither breaks nor protects any.
        outcome.robust = [None] * len(outcome.robust)
        outcome.values.pop("ran", None)
        outcome.settings = {"not_applicable": str(e)}
        return
    if entry.w_grad == "both":
        attack = Adaptive(attack, cascade=entry.cascade)
    elif entry.w_grad in W_GRAD_POLICIES:
        attack.w_grad = entry.w_grad
    outcome.settings = attack.settings()
    if not todo:
        return
    result = attack.run(x[todo], y[todo])
    robust = result.robust.tolist()
    for pos, value in zip(todo, robust):
        outcome.robust[pos] = bool(value)
    ran = {_policy_name(p): m for p, m in result.info.get("ran_by_policy", {}).items()}
    for policy, flags in _by_policy(result).items():
        column: list[bool | None] = list(outcome.robust)
        attacked = ran[policy].tolist() if policy in ran else [True] * len(todo)
        for pos, value, did in zip(todo, flags.tolist(), attacked):
            # A cascaded policy did not attack what an earlier one broke: no verdict of its own.
            column[pos] = bool(value) if did else None
        outcome.by_policy[policy] = column
    outcome.grad_stats = _grad_stats(result, attack)
    outcome.flags = _flags(result)


def _policy_name(policy: str) -> str:
    # Adaptive names the single run on a model without dictionary layers "None".
    return "model" if policy in ("None", None) else policy


def _by_policy(result: AttackResult) -> dict[str, Tensor]:
    return {_policy_name(p): r for p, r in result.info.get("robust_by_policy", {}).items()}


def _grad_stats(result: AttackResult, attack: Any) -> dict[str, dict[str, int]]:
    if "by_policy" in result.info:
        return {
            _policy_name(p): dict(info["grad_stats"])
            for p, info in result.info["by_policy"].items()
            if "grad_stats" in info
        }
    if "grad_stats" in result.info:
        # On a model without dictionary layers every policy is the model's own gradient.
        policy = attack.w_grad if has_w_grad_policy(attack.model) else None
        return {_policy_name(policy): dict(result.info["grad_stats"])}
    return {}


def _flags(result: AttackResult) -> list[str]:
    infos = list(result.info.get("by_policy", {}).values()) or [result.info]
    flags = [flag for info in infos for flag in info.get("flags", [])]
    return list(dict.fromkeys(flags))


def _run_probe(
    entry: Entry,
    model: nn.Module,
    fd_model: nn.Module,
    x: Tensor,
    y: Tensor,
    todo: list[int],
    outcome: BatchResult,
    seed: int,
) -> None:
    outcome.settings = dict(entry.settings)
    outcome.robust = [None] * x.shape[0]  # a probe measures gradients, not robustness
    if not todo:
        return
    settings = entry.settings
    eps = parse_eps(settings["eps"])[1] if settings.get("eps") is not None else None
    values = gradient_probe(
        model,
        fd_model,
        x[todo],
        y[todo],
        policies_of(model),
        h=float(settings.get("h", 1e-3)),
        seed=seed,
        norm=settings.get("norm"),
        eps=eps,
        pgd_steps=int(settings.get("pgd_steps", 5)),
        vanishing_fraction=float(settings.get("vanishing_fraction", 1e-3)),
    )
    n = x.shape[0]
    for key, column in values.items():
        full: list[Any] = [None] * n
        for pos, value in zip(todo, column):
            full[pos] = value
        outcome.values[key] = full
