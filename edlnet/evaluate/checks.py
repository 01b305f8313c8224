"""Gradient-masking checks that run with every suite.

A model whose gradients are hidden (zero, exploding, noisy, or a wrong surrogate backward
pass through the reweighting) makes gradient attacks fail and looks robust without being
robust. Each check below is a symptom of that; every suite runs them and its report says
which passed. Options come from the suite file's ``checks:`` section over ``DEFAULTS``
(``false`` turns a check off); each check returns ``{"name", "passed", "detail", ...}`` with
``passed`` None when it could not run (nothing to compare, no surrogate, no AutoAttack).

- ``large_eps``: PGD from the clean image (no random start, so random noise cannot stand in
  for the gradient) at a large budget (64/255 in Linf) must bring accuracy to ~0
  (``max_accuracy``, default 0.02).
- ``more_steps``: the suite's PGD with more steps and restarts must not leave more examples
  robust than the base PGD beyond noise: paired over examples, (robust only under the
  stronger attack) − (robust only under the base) ≤ z·sqrt(discordant), z = 2 (McNemar).
- ``black_box``: Square (score-based, gradient-free) must not beat the white-box worst case at
  the main budget: accuracy(Square) ≥ accuracy(white box) − ``tolerance`` (0.002, the value
  AutoAttack's own check uses).
- ``transfer``: PGD on a plain surrogate, judged on the model, must not beat the white box
  either (same rule); skipped without a surrogate.
- ``input_gradients``: fp32 input gradients at the clean images, and at every step of the
  suite's gradient attacks, are finite and non-zero, for at least one reweighting-gradient
  policy (bad fraction ≤ ``max_bad_fraction``, 0.01).
- ``gradient_agreement``: finite differences on a float64 copy confirm the gradient's slope
  (within a factor 2) for at least ``min_agreement`` (0.9) of the probed examples, under some
  policy.
- ``budget_monotone``: for entries that differ only in budget (and step size), accuracy must
  not rise with the budget beyond noise (same paired rule as ``more_steps``).
- ``autoattack_flags``: AutoAttack's own warnings (randomized or dynamic defense, zero
  gradients, Square beating the white-box attacks, ...), when the suite ran AutoAttack.
"""
from __future__ import annotations

import json
import math
import statistics
from typing import Any, Mapping

from edlnet.attacks import parse_eps

from .shard import EntryResult
from .suites import Entry, Suite, SuiteError, validate_attack_entry
from .worst_case import counted_entries

PROBE = "check/gradients"
LARGE_EPS = "check/large-eps"
MORE_STEPS = "check/more-steps"
SQUARE = "check/square"
TRANSFER = "check/transfer"

DEFAULTS: dict[str, dict[str, Any]] = {
    "large_eps": {"norm": "Linf", "eps": "64/255", "steps": 20, "max_accuracy": 0.02,
                  "limit": 500},
    "more_steps": {"base": None, "steps": None, "restarts": 2, "z": 2.0, "limit": 200},
    "black_box": {"entry": None, "n_queries": 1000, "tolerance": 0.002, "limit": 200},
    "transfer": {"steps": 20, "tolerance": 0.002, "limit": 500},
    "gradients": {"n_probe": 64, "h": 1e-3, "max_bad_fraction": 0.01, "min_agreement": 0.9},
    "budget_monotone": {"z": 2.0},
    "autoattack_flags": {},
}
CHECK_NAMES = ("large_eps", "more_steps", "black_box", "transfer", "input_gradients",
               "gradient_agreement", "budget_monotone", "autoattack_flags")


def resolve_check_options(suite: Suite, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check options of ``suite``: defaults overridden by the file, references resolved."""
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise SuiteError(f"{where}: unknown checks {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    out: dict[str, Any] = {}
    for name, defaults in DEFAULTS.items():
        given = raw.get(name, {})
        if given is False or (given is None and name in raw):
            out[name] = {"enabled": False, "reason": "turned off in the suite file"}
            continue
        if given is True:
            given = {}
        if not isinstance(given, Mapping):
            raise SuiteError(f"{where}: checks.{name} must be a mapping of options or false")
        if given.get("enabled", True) is False:  # {enabled: false, reason: "..."}
            out[name] = {"enabled": False,
                         "reason": str(given.get("reason", "turned off in the suite file"))}
            continue
        given = {k: v for k, v in given.items() if k not in ("enabled", "reason")}
        bad = set(given) - set(defaults)
        if bad:
            raise SuiteError(f"{where}: checks.{name} has no options {sorted(bad)}; "
                             f"its options are {sorted(defaults)}")
        out[name] = {**defaults, **given, "enabled": True}
    _resolve_references(suite, out, where)
    for entry in check_entries(suite, out, has_surrogate=True):
        if entry.kind == "attack":
            validate_attack_entry(entry, f"{where}, checks")
    return out


def _resolve_references(suite: Suite, opts: dict[str, Any], where: str) -> None:
    large = opts["large_eps"]
    if large["enabled"]:
        try:
            parse_eps(large["eps"])
        except ValueError as e:
            raise SuiteError(f"{where}: checks.large_eps: {e}") from None
    main = suite.main
    for name in ("more_steps", "black_box", "transfer"):
        if opts[name]["enabled"] and main is None:
            opts[name] = {"enabled": False, "reason": "the suite has no main budget to compare at"}
    more = opts["more_steps"]
    if more["enabled"]:
        if more["base"] is None:
            base = next((e for e in suite.entries
                         if e.kind == "attack" and e.attack == "pgd" and e.budget == main), None)
            if base is None:
                opts["more_steps"] = {"enabled": False,
                                      "reason": "the suite has no PGD entry at its main budget"}
            else:
                more["base"] = base.name
        else:
            base = suite.entry(more["base"])
            if base.attack != "pgd":
                raise SuiteError(f"{where}: checks.more_steps.base must name a PGD entry, "
                                 f"{base.name!r} is {base.attack}")
    black = opts["black_box"]
    if black["enabled"]:
        if black["entry"] is None:
            found = next((e for e in suite.entries
                          if e.kind == "attack" and e.attack == "square" and e.budget == main), None)
            black["entry"] = found.name if found else None
        elif suite.entry(black["entry"]).attack != "square":
            raise SuiteError(f"{where}: checks.black_box.entry must name a Square entry")


def check_entries(suite: Suite, options: Mapping[str, Any] | None = None,
                  has_surrogate: bool = False) -> list[Entry]:
    """The extra entries the checks need (run after the suite's own, with role "check")."""
    opts = options if options is not None else suite.checks
    out: list[Entry] = []
    grads = opts["gradients"]
    if grads["enabled"]:
        out.append(Entry(name=PROBE, kind="probe", settings={"h": float(grads["h"])},
                         role="check", limit=int(grads["n_probe"])))
    large = opts["large_eps"]
    if large["enabled"]:
        out.append(Entry(name=LARGE_EPS, kind="attack", attack="pgd", norm=large["norm"],
                         eps=parse_eps(large["eps"])[0], w_grad="both", role="check",
                         settings={"steps": int(large["steps"]), "random_start": False},
                         limit=large["limit"]))
    more = opts["more_steps"]
    if more["enabled"]:
        base = suite.entry(more["base"])
        base_steps = int(base.settings.get("steps", 20))
        # "More" is never fewer than the base's own steps and restarts.
        steps = max(int(more["steps"] or 4 * base_steps), base_steps)
        restarts = max(int(more["restarts"]), int(base.settings.get("restarts", 1)))
        out.append(Entry(name=MORE_STEPS, kind="attack", attack="pgd", norm=base.norm,
                         eps=base.eps, w_grad=base.w_grad, role="check", limit=more["limit"],
                         settings={**base.settings, "steps": steps, "restarts": restarts}))
    black = opts["black_box"]
    if black["enabled"] and black["entry"] is None:
        out.append(Entry(name=SQUARE, kind="attack", attack="square", norm=suite.main.norm,
                         eps=suite.main.eps, role="check", limit=black["limit"],
                         settings={"n_queries": int(black["n_queries"])}))
    transfer = opts["transfer"]
    if transfer["enabled"] and has_surrogate:
        out.append(Entry(name=TRANSFER, kind="attack", attack="transfer", norm=suite.main.norm,
                         eps=suite.main.eps, role="check", limit=transfer["limit"],
                         settings={"source": "pgd", "steps": int(transfer["steps"])}))
    return out


def run_checks(suite: Suite, merged: Mapping[str, EntryResult],
               has_surrogate: bool) -> list[dict[str, Any]]:
    """Every check's verdict from the merged per-example results."""
    opts = suite.checks
    clean = merged["clean"].robust
    return [
        _large_eps(opts["large_eps"], merged, clean),
        _more_steps(opts["more_steps"], merged, clean),
        _black_box(opts["black_box"], suite, merged, clean),
        _transfer(opts["transfer"], suite, merged, clean, has_surrogate),
        _input_gradients(opts["gradients"], merged),
        _gradient_agreement(opts["gradients"], merged),
        _budget_monotone(opts["budget_monotone"], suite, merged),
        _autoattack_flags(opts["autoattack_flags"], merged),
    ]


def _result(name: str, passed: bool | None, detail: str, **data: Any) -> dict[str, Any]:
    return {"name": name, "passed": passed, "detail": detail, **data}


def _off(name: str, opts: Mapping[str, Any]) -> dict[str, Any] | None:
    if not opts.get("enabled", True):
        return _result(name, None, f"not run: {opts.get('reason', 'disabled')}")
    return None


_NOTHING = "not run: no example the check covers is classified correctly, so there is nothing to attack"


def _attacked(result: EntryResult, clean: list[bool | None]) -> list[int]:
    """Examples the entry actually attacked: evaluated and correct on the clean image."""
    return [i for i in result.evaluated() if clean[i]]


def _policies(result: EntryResult) -> str:
    names = [p for p in result.by_policy if p != "model"]
    return "+".join(names) if names else "model's own gradients"


def _large_eps(opts: Mapping[str, Any], merged: Mapping[str, EntryResult],
               clean: list[bool | None]) -> dict[str, Any]:
    if (off := _off("large_eps", opts)) is not None:
        return off
    result = merged[LARGE_EPS]
    if not _attacked(result, clean):
        return _result("large_eps", None, _NOTHING)
    acc, n = result.accuracy(), len(result.evaluated())
    budget = result.entry.budget
    passed = acc <= float(opts["max_accuracy"])
    detail = (f"PGD-{opts['steps']} from the clean image at {budget.label} "
              f"({_policies(result)}) leaves accuracy {acc:.3f} on {n} examples "
              f"(must be <= {opts['max_accuracy']})")
    if not passed:
        detail += ": gradient attacks cannot break the model even with a huge budget"
    return _result("large_eps", passed, detail, accuracy=acc, n=n,
                   threshold=float(opts["max_accuracy"]))


def _paired(base: list[bool | None], other: list[bool | None]) -> tuple[list[int], int, int]:
    idx = [i for i, (a, b) in enumerate(zip(base, other)) if a is not None and b is not None]
    only_other = sum(1 for i in idx if other[i] and not base[i])
    only_base = sum(1 for i in idx if base[i] and not other[i])
    return idx, only_other, only_base


def _more_steps(opts: Mapping[str, Any], merged: Mapping[str, EntryResult],
                clean: list[bool | None]) -> dict[str, Any]:
    if (off := _off("more_steps", opts)) is not None:
        return off
    base, strong = merged[opts["base"]], merged[MORE_STEPS]
    if not _attacked(strong, clean):
        return _result("more_steps", None, _NOTHING)
    idx, up, down = _paired(base.robust, strong.robust)
    acc_base = sum(bool(base.robust[i]) for i in idx) / len(idx)
    acc_strong = sum(bool(strong.robust[i]) for i in idx) / len(idx)
    allowed = float(opts["z"]) * math.sqrt(up + down)
    passed = (up - down) <= allowed
    settings = strong.entry.settings
    detail = (f"{base.entry.name}: {acc_base:.3f}, PGD-{settings['steps']} x{settings['restarts']} "
              f"restarts: {acc_strong:.3f} on the first {len(idx)} examples; robust only under the "
              f"stronger attack: {up}, only under the base: {down} "
              f"(excess must be <= {opts['z']}*sqrt({up + down}) = {allowed:.2f})")
    if not passed:
        detail += ": more iterations help the model, a sign of masked gradients"
    return _result("more_steps", passed, detail, base_accuracy=acc_base,
                   strong_accuracy=acc_strong, only_strong_robust=up, only_base_robust=down)


def _white_box(suite: Suite, merged: Mapping[str, EntryResult]) -> list[EntryResult]:
    return [merged[e.name] for e in counted_entries((r.entry for r in merged.values()), suite.main)
            if e.gradient]


def _not_beating(name: str, other: EntryResult, white: list[EntryResult],
                 clean: list[bool | None], tolerance: float, label: str) -> dict[str, Any]:
    if not white:
        return _result(name, None, "not run: the suite has no white-box attack at its main budget")
    if not _attacked(other, clean):
        return _result(name, None, _NOTHING)
    idx = other.evaluated()
    white_robust = [bool(clean[i]) and all(w.robust[i] is None or bool(w.robust[i]) for w in white)
                    for i in idx]
    other_robust = [bool(other.robust[i]) for i in idx]
    acc_other = sum(other_robust) / len(idx)
    acc_white = sum(white_robust) / len(idx)
    only_other = sum(1 for o, w in zip(other_robust, white_robust) if w and not o)
    passed = acc_other >= acc_white - tolerance
    detail = (f"{label}: {acc_other:.3f} vs white-box worst case {acc_white:.3f} "
              f"({', '.join(w.entry.name for w in white)}) on {len(idx)} examples; "
              f"{only_other} broken only by {label} (accuracy must not be lower by more than "
              f"{tolerance})")
    if not passed:
        detail += ": the white-box attacks miss what a weaker attack finds, a sign of masked gradients"
    return _result(name, passed, detail, accuracy=acc_other, white_box_accuracy=acc_white,
                   only_broken_by_it=only_other)


def _black_box(opts: Mapping[str, Any], suite: Suite, merged: Mapping[str, EntryResult],
               clean: list[bool | None]) -> dict[str, Any]:
    if (off := _off("black_box", opts)) is not None:
        return off
    square = merged[opts["entry"] or SQUARE]
    return _not_beating("black_box", square, _white_box(suite, merged), clean,
                        float(opts["tolerance"]), f"Square ({square.entry.name})")


def _transfer(opts: Mapping[str, Any], suite: Suite, merged: Mapping[str, EntryResult],
              clean: list[bool | None], has_surrogate: bool) -> dict[str, Any]:
    if (off := _off("transfer", opts)) is not None:
        return off
    if not has_surrogate or TRANSFER not in merged:
        return _result("transfer", None, "not run: no surrogate model given (surrogate=..., "
                       "edlnet eval --surrogate CKPT): train a plain ResNet to check transfer")
    return _not_beating("transfer", merged[TRANSFER], _white_box(suite, merged), clean,
                        float(opts["tolerance"]), "transfer from the surrogate")


def _probe_policies(probe: EntryResult, prefix: str) -> list[str]:
    return [k.split(":", 1)[1] for k in probe.values if k.startswith(prefix)]


def _input_gradients(opts: Mapping[str, Any], merged: Mapping[str, EntryResult]) -> dict[str, Any]:
    if (off := _off("input_gradients", opts)) is not None:
        return off
    probe = merged.get(PROBE)
    stats: dict[str, dict[str, int]] = {}
    for result in merged.values():
        if result.entry.gradient:
            for policy, s in result.grad_stats.items():
                total = stats.setdefault(policy, {"evaluations": 0, "nonfinite": 0, "zero": 0})
                for k in total:
                    total[k] += int(s.get(k, 0))
    policies = list(dict.fromkeys((_probe_policies(probe, "grad_ok:") if probe else []) + list(stats)))
    limit = float(opts["max_bad_fraction"])
    usable, parts = [], []
    for policy in policies:
        column = [v for v in (probe.values.get(f"grad_ok:{policy}", []) if probe else []) if v is not None]
        bad_probe = sum(1 for v in column if not v)
        s = stats.get(policy, {"evaluations": 0, "nonfinite": 0, "zero": 0})
        bad_steps = s["nonfinite"] + s["zero"]
        ok = ((not column or bad_probe / len(column) <= limit)
              and (not s["evaluations"] or bad_steps / s["evaluations"] <= limit))
        if column or s["evaluations"]:
            usable.append(ok)
            parts.append(f"{policy}: {bad_probe}/{len(column)} clean-image gradients and "
                         f"{s['nonfinite']} non-finite + {s['zero']} zero of {s['evaluations']} "
                         "attack-step gradients")
    if not usable:
        return _result("input_gradients", None, "not run: no gradients were evaluated")
    passed = any(usable)
    detail = "; ".join(parts) + f" (a policy passes with <= {limit:.0%} bad)"
    if not passed:
        detail += ": every policy gives non-finite or zero gradients"
    return _result("input_gradients", passed, detail, steps=stats)


def _gradient_agreement(opts: Mapping[str, Any], merged: Mapping[str, EntryResult]) -> dict[str, Any]:
    if (off := _off("gradient_agreement", opts)) is not None:
        return off
    probe = merged.get(PROBE)
    if probe is None:
        return _result("gradient_agreement", None, "not run: no probe")
    policies = _probe_policies(probe, "fd_agree:")
    columns = {p: probe.values[f"fd_agree:{p}"] for p in policies}
    idx = [i for i in range(len(probe.robust))
           if any(columns[p][i] is not None for p in policies)]
    if not idx:
        return _result("gradient_agreement", None, "not run: no clean-correct example to probe")
    agreeing = sum(1 for i in idx if any(columns[p][i] for p in policies))
    fraction = agreeing / len(idx)
    parts = []
    for p in policies:
        ratios = [float(r) for r in probe.values[f"fd_ratio:{p}"] if r is not None]
        ratios = [r for r in ratios if math.isfinite(r)]
        median = f"{statistics.median(ratios):.3g}" if ratios else "n/a"
        parts.append(f"{p} {sum(1 for i in idx if columns[p][i])}/{len(idx)} "
                     f"(median measured/claimed slope {median})")
    passed = fraction >= float(opts["min_agreement"])
    detail = (f"finite differences along the gradient confirm it for {agreeing}/{len(idx)} "
              f"probed examples under some policy: {'; '.join(parts)} "
              f"(must be >= {opts['min_agreement']:.0%})")
    if not passed:
        detail += ": the gradients the attacks follow do not describe the model"
    return _result("gradient_agreement", passed, detail, fraction=fraction)


def _budget_monotone(opts: Mapping[str, Any], suite: Suite,
                     merged: Mapping[str, EntryResult]) -> dict[str, Any]:
    if (off := _off("budget_monotone", opts)) is not None:
        return off
    groups: dict[str, list[Entry]] = {}
    for e in suite.entries:
        if e.kind == "attack" and e.eps is not None:
            # Step sizes usually scale with the budget; entries differing in them still compare.
            settings = {k: v for k, v in e.settings.items() if k != "alpha"}
            key = json.dumps([e.attack, e.norm, e.w_grad, settings], sort_keys=True, default=str)
            groups.setdefault(key, []).append(e)
    sweeps = [sorted(g, key=lambda e: e.eps) for g in groups.values() if len({e.eps for e in g}) > 1]
    if not sweeps:
        return _result("budget_monotone", None, "not run: the suite sweeps no budget")
    worst, failures, pairs = None, [], 0
    for sweep in sweeps:
        for small, large in zip(sweep, sweep[1:]):
            idx, up, down = _paired(merged[small.name].robust, merged[large.name].robust)
            pairs += 1
            excess = up - down
            allowed = float(opts["z"]) * math.sqrt(up + down)
            if worst is None or excess - allowed > worst[0]:
                worst = (excess - allowed, small.name, large.name, up, down)
            if excess > allowed:
                failures.append(f"{large.name} leaves {up} robust that {small.name} broke "
                                f"(and breaks {down} it left)")
    passed = not failures
    detail = (f"{pairs} budget steps in {len(sweeps)} sweeps; accuracy never rises with the "
              "budget beyond noise" if passed else "; ".join(failures)
              + ": a larger budget should never help the model")
    return _result("budget_monotone", passed, detail)


def _autoattack_flags(opts: Mapping[str, Any], merged: Mapping[str, EntryResult]) -> dict[str, Any]:
    if (off := _off("autoattack_flags", opts)) is not None:
        return off
    runs = [r for r in merged.values() if r.entry.attack == "autoattack"]
    if not runs:
        return _result("autoattack_flags", None, "not run: the suite has no AutoAttack entry")
    runs = [r for r in runs if _attacked(r, merged["clean"].robust)]
    if not runs:
        return _result("autoattack_flags", None, _NOTHING)
    flags = list(dict.fromkeys(f for r in runs for f in r.flags))
    if flags:
        return _result("autoattack_flags", False, "AutoAttack flagged: " + " | ".join(flags),
                       flags=flags)
    return _result("autoattack_flags", True,
                   f"AutoAttack raised no flag in {', '.join(r.entry.name for r in runs)}", flags=[])


def checks_passed(checks: list[dict[str, Any]]) -> bool | None:
    """False if any check failed, True if some ran and all passed, None if none ran."""
    verdicts = [c["passed"] for c in checks if c["passed"] is not None]
    if not verdicts:
        return None
    return all(verdicts)


__all__ = ["CHECK_NAMES", "DEFAULTS", "check_entries", "checks_passed", "resolve_check_options",
           "run_checks"]
