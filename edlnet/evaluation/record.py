"""The evaluation record: accuracies, worst case, checks, per-example flags and provenance.

``build_record`` turns merged per-example results into the dict that ``evaluate`` returns
and ``results.json`` stores; reports are rendered from it (:mod:`edlnet.evaluation.report`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from edlnet.attacks import _reference
from edlnet.layers.gradient_policy import has_w_grad_policy
from edlnet.models.registry import SPEC_ATTR
from edlnet.records import environment, timestamp

from .batches import SEED_STRIDE
from .check_plan import PROBE
from .checks import checks_passed, checks_summary, run_checks
from .merge import EntryResult
from .suite import Budget, Entry, Suite
from .worst_case import budgets_of, counted_entries, worst_case_flags

WORST_CASE_RULE = (
    "per example: correct on the clean image and not broken by any attack entry (the suite's "
    "and the checks') whose threat model lies inside the budget: same norm with eps no larger, "
    "or a smaller ball of the same radius (L1 in L2 in Linf); corruptions, unbounded "
    "minimal-norm attacks and larger budgets do not count"
)


def model_info(model: nn.Module) -> dict[str, Any]:
    """What the record says about the model: its registry spec when it has one."""
    spec = getattr(model, SPEC_ATTR, None)
    return {
        "class": type(model).__name__,
        "spec": dict(spec) if spec else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dictionary_layers": has_w_grad_policy(model),
    }


def _worst(
    entries: Sequence[Entry], merged: Mapping[str, EntryResult], budget: Budget, clean: list[bool | None]
) -> tuple[list[bool], list[str]]:
    counted = counted_entries(entries, budget)
    flags = worst_case_flags(clean, [merged[e.name].robust for e in counted])
    return flags, [e.name for e in counted]


def build_record(
    suite: Suite,
    entries: Sequence[Entry],
    merged: Mapping[str, EntryResult],
    *,
    model: nn.Module,
    n_examples: int,
    batch_size: int,
    seed: int,
    world_size: int,
    surrogate: nn.Module | None,
    wall_seconds: float,
    info: Mapping[str, Any] | None = None,
    randomized: bool | None = None,
) -> dict[str, Any]:
    """The full record of one evaluation (see :func:`edlnet.evaluation.evaluate`)."""
    clean = merged["clean"].robust
    own = [e for e in suite.entries if e.kind == "attack"]
    corruptions = [e for e in suite.entries if e.kind == "corruption"]
    attacks = {e.name: merged[e.name].accuracy() for e in own}
    by_policy = {
        e.name: {p: merged[e.name].accuracy(col) for p, col in merged[e.name].by_policy.items()}
        for e in list(own) + [e for e in entries if e.role == "check"]
        if len(merged[e.name].by_policy) > 1
    }
    worst_flags, worst_names = (None, [])
    if suite.main is not None:
        worst_flags, worst_names = _worst(entries, merged, suite.main, clean)
    by_budget = {}
    for budget in budgets_of(own):
        flags, names = _worst(entries, merged, budget, clean)
        by_budget[budget.label] = {
            "accuracy": sum(flags) / len(flags) if flags else None,
            "entries": names,
            **budget.to_dict(),
            # the checks and the adapted attacks run at the main budget
            "checked": suite.main is not None and budget == suite.main,
        }
    checks = run_checks(suite, merged, has_surrogate=surrogate is not None, randomized=randomized)
    aa_standard = {}
    for e in entries:
        column = merged[e.name].values.get("aa_standard")
        if column is not None:
            flags = [bool(c) and bool(v) for c, v in zip(clean, column)]
            aa_standard[e.name] = {
                "accuracy": sum(flags) / max(len(flags), 1),
                "n_examples": len(flags),
                "policy": next(iter(merged[e.name].by_policy), "model"),
                "attacks": "APGD-CE, APGD-T, FAB-T, then Square on the points still robust "
                "(AutoAttack standard, cascaded as the reference does)",
            }
    per_example: dict[str, Any] = {"index": list(range(n_examples)), "clean": clean}
    if worst_flags is not None:
        per_example["worst_case"] = worst_flags
    for e in entries:
        if e.kind in ("attack", "corruption"):
            per_example[e.name] = merged[e.name].robust
    record: dict[str, Any] = {
        "suite": suite.name,
        "description": suite.description,
        "suite_file": suite.source,
        "main_budget": None if suite.main is None else suite.main.to_dict(),
        "n_examples": n_examples,
        "batch_size": batch_size,
        "seed": seed,
        "seed_rule": f"entries on batch b use seed ({seed} * {SEED_STRIDE} + b) mod 2^31; "
        "corruption noise is seeded per example index",
        "world_size": world_size,
        "clean": merged["clean"].accuracy(),
        "attacks": attacks,
        "corruptions": {e.name: merged[e.name].accuracy() for e in corruptions},
        "attacks_by_policy": by_policy,
        "worst_case": None if worst_flags is None else sum(worst_flags) / max(len(worst_flags), 1),
        "worst_case_entries": worst_names,
        "worst_case_rule": WORST_CASE_RULE,
        "worst_case_by_budget": by_budget,
        "autoattack_standard": aa_standard,
        "randomized": randomized,
        "checks": checks,
        "checks_passed": checks_passed(checks),
        "checks_summary": checks_summary(checks),
        "entries": {e.name: _entry_summary(e, merged[e.name]) for e in entries},
        "seconds": {e.name: merged[e.name].seconds for e in entries},
        "wall_seconds": wall_seconds,
        "per_example": per_example,
        "per_example_by_policy": {
            e.name: merged[e.name].by_policy for e in entries if len(merged[e.name].by_policy) > 1
        },
        "model": model_info(model),
        "surrogate": None if surrogate is None else model_info(surrogate),
        "suite_spec": suite.to_dict(),
        "environment": {**environment(), "autoattack_reference": _reference.version()},
        "created": timestamp(),
    }
    if PROBE in merged:
        record["gradient_probe"] = merged[PROBE].values
    if info:
        record.update(info)
    return record


def _entry_summary(entry: Entry, result: EntryResult) -> dict[str, Any]:
    out = {
        **entry.to_dict(),
        "accuracy": result.accuracy(),
        "n_evaluated": len(result.evaluated()),
        "seconds": result.seconds,
        "attack_settings": result.settings,
    }
    if result.by_policy:
        out["accuracy_by_policy"] = {p: result.accuracy(c) for p, c in result.by_policy.items()}
    if result.grad_stats:
        out["grad_stats"] = result.grad_stats
    if result.flags:
        out["flags"] = result.flags
    return out
