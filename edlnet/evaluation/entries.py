"""Run one suite entry on one batch: clean accuracy, an attack, a corruption, or the probe.

The unit of work (and of resuming and sharding) is an (entry, batch) pair. Batches are fixed
ranges of example indices, and every random choice of an entry is seeded from the suite seed
and the batch index, so a batch gives the same result whichever process runs it and whatever
else it runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from edlnet.attacks import Adaptive, AttackResult, attack_mode, parse_eps
from edlnet.attacks.base import NotApplicable
from edlnet.layers.gradient_policy import W_GRAD_POLICIES, has_w_grad_policy

from .autoattack_split import is_split_autoattack, run_autoattack_split
from .corruptions import corrupt
from .probe import gradient_probe
from .suites import Entry, build_attack

# Seeds of different batches must differ (fresh random starts) yet be fixed by the batch.
SEED_STRIDE = 1_000_003


def batch_seed(seed: int, batch: int) -> int:
    """The seed of every random choice an entry makes on batch ``batch``."""
    return (int(seed) * SEED_STRIDE + int(batch)) % 2**31


@dataclass
class BatchRecord:
    """Per-example results of one entry on one batch (examples ``start..stop-1``).

    ``robust[i]`` is True when example ``start + i`` is still classified correctly (for
    attacks: correct on the clean image and at the attack's point), None when the entry did
    not evaluate it (beyond a check's ``limit``). ``by_policy`` holds the same per
    reweighting-gradient policy for entries run under both.
    """

    entry: str
    batch: int
    start: int
    stop: int
    robust: list[bool | None]
    seconds: float
    by_policy: dict[str, list[bool | None]] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)
    grad_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    settings: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchRecord:
        return cls(**data)


def policies_of(model: nn.Module) -> tuple[str | None, ...]:
    """The reweighting-gradient policies worth probing: both for dictionary networks."""
    return W_GRAD_POLICIES if has_w_grad_policy(model) else (None,)


def run_batch(
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
) -> BatchRecord:
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
    record = BatchRecord(
        entry=entry.name, batch=batch, start=start, stop=start + n, robust=[None] * n, seconds=0.0
    )
    if entry.kind in ("clean", "corruption"):
        xb = (
            x
            if entry.kind == "clean"
            else corrupt(x, entry.corruption, entry.severity, seed=seed, indices=list(indices))
        )
        correct = _predict(model, xb) == y
        record.robust = [bool(c) if ok else None for c, ok in zip(correct.tolist(), inside)]
    else:
        if clean is None:
            raise ValueError(f"entry {entry.name!r} needs the clean result of its batch")
        todo = [i for i in range(n) if inside[i] and clean[i] and (alive is None or alive[i])]
        record.robust = [False if inside[i] else None for i in range(n)]
        if entry.kind == "attack":
            record.values["ran"] = [i in todo if inside[i] else None for i in range(n)]
            _run_attack(entry, model, x, y, todo, record, batch_seed(seed, batch), surrogate)
        elif entry.kind == "probe":
            _run_probe(entry, model, fd_model or model, x, y, todo, record, batch_seed(seed, batch))
        else:
            raise ValueError(f"unknown entry kind {entry.kind!r}")
    record.seconds = time.perf_counter() - t0
    return record


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
    record: BatchRecord,
    seed: int,
    surrogate: nn.Module | None,
) -> None:
    if is_split_autoattack(entry):
        return run_autoattack_split(entry, model, x, y, todo, record, seed)
    try:
        attack = build_attack(entry, model, seed=seed, surrogate=surrogate)
    except NotApplicable as e:
        # Nothing to attack through (e.g. a residual loss on a model without reweighting
        # layers): the entry evaluates no example, so it neither breaks nor protects any.
        record.robust = [None] * len(record.robust)
        record.values.pop("ran", None)
        record.settings = {"not_applicable": str(e)}
        return
    if entry.w_grad == "both":
        attack = Adaptive(attack, cascade=entry.cascade)
    elif entry.w_grad in W_GRAD_POLICIES:
        attack.w_grad = entry.w_grad
    record.settings = attack.settings()
    if not todo:
        return
    result = attack.run(x[todo], y[todo])
    robust = result.robust.tolist()
    for pos, value in zip(todo, robust):
        record.robust[pos] = bool(value)
    ran = {_policy_name(p): m for p, m in result.info.get("ran_by_policy", {}).items()}
    for policy, flags in _by_policy(result).items():
        column: list[bool | None] = list(record.robust)
        attacked = ran[policy].tolist() if policy in ran else [True] * len(todo)
        for pos, value, did in zip(todo, flags.tolist(), attacked):
            # A cascaded policy did not attack what an earlier one broke: no verdict of its own.
            column[pos] = bool(value) if did else None
        record.by_policy[policy] = column
    record.grad_stats = _grad_stats(result, attack)
    record.flags = _flags(result)


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
    record: BatchRecord,
    seed: int,
) -> None:
    record.settings = dict(entry.settings)
    record.robust = [None] * x.shape[0]  # a probe measures gradients, not robustness
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
        record.values[key] = full
