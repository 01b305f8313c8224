"""Gradient-masking checks that run with every suite: their verdicts on the merged results.

A model whose gradients are hidden (zero, vanishing, exploding, noisy, randomized, or a wrong
surrogate backward pass through the reweighting) makes gradient attacks fail and looks robust
without being robust. Each check detects one such pattern; docs/checks.md has one section per
check (what it detects, its threshold and why, what to do when it fails) and every failing
check's message points to it. Options come from the suite file's ``checks:`` section over
``DEFAULTS``, and the attacks they compare with the suite's are added as entries, by
:mod:`edlnet.evaluation.check_plan`. Each check returns ``{"name", "status", "passed",
"detail", "doc"}`` with ``status`` one of ``passed``, ``failed``, ``skipped`` (it applies but
could not run) or ``not applicable`` (the suite holds nothing it is about), and ``passed``
True, False or None to match; a skipped check is never counted as passed.

Checks that compare attacks do it per example: a count of examples that one attack breaks and
the others all missed, never a difference of totals.

- ``large_eps``: PGD from the clean image at a large budget (64/255 in Linf) must break almost
  every clean-correct example (surviving fraction <= ``max_accuracy``, 0.02).
- ``more_steps``: PGD with 4x the steps and more restarts, run on the examples every reported
  white-box attack left robust, must break at most ``tolerance`` (0.5%) of the attacked
  examples: otherwise the reported attacks had not converged.
- ``single_step``: FGSM must not break, beyond ``tolerance`` (0.5%), examples that every
  multi-step gradient attack at the same budget missed.
- ``black_box``: Square (>= 1,000 queries; and the Square part of AutoAttack entries) must not
  break more than ``tolerance`` (0.2%, AutoAttack's own value) of the examples that every
  white-box attack left robust.
- ``transfer``: PGD on a plain surrogate, judged on the model, the same rule; skipped (and said
  so) without a surrogate.
- ``input_gradients``: fp32 input gradients at the clean images, at random points of the main
  ball and at PGD iterates, and at every step of the suite's gradient attacks, must be finite,
  non-zero and not vanishing (norm below ``vanishing_fraction`` of the clean-image gradient's)
  for the model's true gradient (``exact`` policy of dictionary layers, or the model's own);
  surrogate policies (``detached``) are reported beside it.
- ``gradient_agreement``: central finite differences on a float64 copy confirm the true
  gradient's slope (within a factor 2) at the probe points for at least ``min_agreement``
  (0.9) of the probed examples.
- ``budget_monotone``: for entries that differ only in budget, accuracy must not rise with the
  budget beyond noise (paired McNemar-style rule, z = 2).
- ``deterministic``: two eval-mode passes give identical outputs; a randomized model passes only
  when EOT attacks were added to its worst case.
- ``autoattack_flags``: AutoAttack's own warnings, and non-finite gradients or images inside it.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from typing import Any

from .check_plan import EOT, LARGE_EPS, MORE_STEPS, PROBE, SQUARE, TRANSFER
from .merge import EntryResult
from .suite import Entry, Suite
from .worst_case import counted_entries

DOC = "docs/checks.md"

CHECK_NAMES = (
    "large_eps",
    "more_steps",
    "single_step",
    "black_box",
    "transfer",
    "input_gradients",
    "gradient_agreement",
    "budget_monotone",
    "deterministic",
    "autoattack_flags",
)
# Attacks whose gradients are a surrogate's, not the evaluated model's.
SURROGATE_GRADIENTS = ("surrogate-pgd", "transfer")


def run_checks(
    suite: Suite, merged: Mapping[str, EntryResult], has_surrogate: bool, randomized: bool | None = None
) -> list[dict[str, Any]]:
    """Every check's verdict from the merged per-example results."""
    opts = suite.checks
    clean = merged["clean"].robust
    return [
        _large_eps(opts["large_eps"], merged, clean),
        _more_steps(opts["more_steps"], suite, merged, clean),
        _single_step(opts["single_step"], suite, merged, clean),
        _black_box(opts["black_box"], suite, merged, clean),
        _transfer(opts["transfer"], suite, merged, clean, has_surrogate),
        _input_gradients(opts["gradients"], merged),
        _gradient_agreement(opts["gradients"], merged),
        _budget_monotone(opts["budget_monotone"], suite, merged),
        _deterministic(opts["deterministic"], merged, randomized),
        _autoattack_flags(opts["autoattack_flags"], merged),
    ]


_STATUS = {True: "passed", False: "failed", None: "skipped"}


def _result(
    name: str, passed: bool | None, detail: str, applicable: bool = True, **data: Any
) -> dict[str, Any]:
    """A check's verdict. ``applicable=False`` (with ``passed`` None): the suite holds nothing
    the check is about (no budget sweep, no AutoAttack entry), which is not a skipped check."""
    if passed is False:
        detail += f" (what to do: {DOC}#{name})"
    status = _STATUS[passed] if applicable else "not applicable"
    return {
        "name": name,
        "status": status,
        "passed": passed,
        "detail": detail,
        "doc": f"{DOC}#{name}",
        **data,
    }


def _off(name: str, opts: Mapping[str, Any]) -> dict[str, Any] | None:
    if not opts.get("enabled", True):
        return _result(name, None, f"not run: {opts.get('reason', 'disabled')}")
    return None


_NOTHING = "not run: no example the check covers is classified correctly, so there is nothing to attack"


def _attacked(result: EntryResult, clean: list[bool | None]) -> list[int]:
    """Examples the entry covers that are correct on the clean image."""
    return [i for i in result.evaluated() if clean[i]]


def _policies(result: EntryResult) -> str:
    names = [p for p in result.by_policy if p != "model"]
    return "+".join(names) if names else "model's own gradients"


def _large_eps(
    opts: Mapping[str, Any], merged: Mapping[str, EntryResult], clean: list[bool | None]
) -> dict[str, Any]:
    if (off := _off("large_eps", opts)) is not None:
        return off
    result = merged[LARGE_EPS]
    attacked = _attacked(result, clean)
    if not attacked:
        return _result("large_eps", None, _NOTHING)
    # Only clean-correct examples: a misclassified one is "broken" without any attack.
    surviving = sum(bool(result.robust[i]) for i in attacked)
    acc = surviving / len(attacked)
    budget = result.entry.budget
    passed = acc <= float(opts["max_accuracy"])
    detail = (
        f"PGD-{opts['steps']} from the clean image at {budget.label} "
        f"({_policies(result)}) leaves {surviving} of {len(attacked)} clean-correct examples "
        f"robust ({acc:.3f}; must be <= {opts['max_accuracy']})"
    )
    if not passed:
        detail += ": gradient attacks cannot break the model even with a huge budget"
    return _result(
        "large_eps", passed, detail, accuracy=acc, n=len(attacked), threshold=float(opts["max_accuracy"])
    )


def _white_box_entries(
    suite: Suite, merged: Mapping[str, EntryResult], *, role: str | None = None, exclude: tuple[str, ...] = ()
) -> list[EntryResult]:
    """Gradient attacks inside the main budget (the suite's, and the checks' unless ``role``)."""
    entries = counted_entries((r.entry for r in merged.values()), suite.main)
    return [
        merged[e.name]
        for e in entries
        if e.follows_model_gradients and e.name not in exclude and (role is None or e.role == role)
    ]


def _white_column(result: EntryResult) -> list[bool | None]:
    return result.values.get("white_box", result.robust)


def _robust_under_all(clean: list[bool | None], columns: list[list[bool | None]], i: int) -> bool:
    return bool(clean[i]) and all(c[i] is None or bool(c[i]) for c in columns)


def broken_by(result: EntryResult) -> list[bool | None]:
    """Per example: True where this entry itself broke it, False where it attacked and failed,
    None where it did not attack (beyond its limit, misclassified already, or skipped by the
    cascade because an earlier attack broke it: that break is not this entry's)."""
    ran = result.values.get("ran")
    out: list[bool | None] = []
    for i, robust in enumerate(result.robust):
        attacked = robust is not None and (ran is None or bool(ran[i]))
        out.append(None if not attacked else not bool(robust))
    return out


def _union(columns: list[list[bool | None]]) -> list[bool | None]:
    """Per example: broken by any of the columns (None where none of them attacked)."""
    out = columns[0]
    for other in columns[1:]:
        out = [a if b is None else (b if a is None else (bool(a) or bool(b))) for a, b in zip(out, other)]
    return out


def _only_broken_by(
    name: str,
    broken: list[bool | None],
    covered: list[int],
    white: list[EntryResult],
    clean: list[bool | None],
    tolerance: float,
    label: str,
    failure: str,
    denominator: int | None = None,
) -> dict[str, Any]:
    """Examples that ``broken`` marks broken while every white-box attack left them robust.

    ``covered``: the clean-correct examples the compared attack(s) cover; the fraction is of
    ``denominator`` (default: ``len(covered)``) and the check fails above ``tolerance``."""
    if not white:
        return _result(name, None, "not run: the suite has no white-box attack at its main budget")
    if not covered:
        return _result(name, None, _NOTHING)
    columns = [_white_column(w) for w in white]
    white_robust = [i for i in covered if _robust_under_all(clean, columns, i)]
    only = [i for i in white_robust if broken[i]]
    n = denominator or len(covered)
    fraction = len(only) / n
    passed = fraction <= tolerance
    detail = (
        f"{label} broke {len(only)} of the {len(white_robust)} examples that every white-box "
        f"attack ({', '.join(w.entry.name for w in white)}) left robust, among {len(covered)} "
        f"clean-correct examples covered: {len(only)}/{n} = {fraction:.2%} (must be <= {tolerance:.2%})"
    )
    if not passed:
        detail += f": {failure}"
    return _result(
        name,
        passed,
        detail,
        only_broken_by_it=len(only),
        n=len(covered),
        white_box_robust=len(white_robust),
        fraction=fraction,
        examples=only[:50],
    )


def _more_steps(
    opts: Mapping[str, Any], suite: Suite, merged: Mapping[str, EntryResult], clean: list[bool | None]
) -> dict[str, Any]:
    if (off := _off("more_steps", opts)) is not None:
        return off
    strong = merged[MORE_STEPS]
    settings = strong.entry.settings
    white = _white_box_entries(suite, merged, role="suite")
    return _only_broken_by(
        "more_steps",
        broken_by(strong),
        _attacked(strong, clean),
        white,
        clean,
        float(opts["tolerance"]),
        f"PGD-{settings['steps']} x{settings['restarts']} restarts",
        "the reported attacks had not converged; more iterations break examples they reported robust",
    )


def _single_step(
    opts: Mapping[str, Any], suite: Suite, merged: Mapping[str, EntryResult], clean: list[bool | None]
) -> dict[str, Any]:
    if (off := _off("single_step", opts)) is not None:
        return off
    singles = [r for r in _white_box_entries(suite, merged) if r.entry.attack == "fgsm"]
    multi = [r for r in _white_box_entries(suite, merged) if r.entry.attack != "fgsm"]
    if not singles:
        return _result("single_step", None, "not run: no single-step (FGSM) attack at the main budget")
    if not multi:
        return _result(
            "single_step", None, "not run: the suite has no multi-step gradient attack at its main budget"
        )
    results = [
        _only_broken_by(
            "single_step",
            broken_by(s),
            _attacked(s, clean),
            multi,
            clean,
            float(opts["tolerance"]),
            s.entry.name,
            "a single step finds what "
            "many steps miss: the multi-step attacks are misled (masked or noisy "
            "gradients)",
        )
        for s in singles
    ]
    failed = [r for r in results if r["passed"] is False]
    return failed[0] if failed else results[0]


def _black_box(
    opts: Mapping[str, Any], suite: Suite, merged: Mapping[str, EntryResult], clean: list[bool | None]
) -> dict[str, Any]:
    if (off := _off("black_box", opts)) is not None:
        return off
    # The check's own Square and the Square part of AutoAttack entries: both black-box.
    extra = [r for r in merged.values() if "square" in r.values and r.entry.budget == suite.main]
    own = merged.get(SQUARE)
    if own is None and not extra:
        return _result("black_box", None, "not run: no Square attack at the main budget")
    columns = [broken_by(own)] if own is not None else []
    columns += [[None if v is None else not bool(v) for v in r.values["square"]] for r in extra]
    broken = _union(columns)
    # Covered: every clean-correct example some Square source could reach (a cascaded Square
    # skips what the white-box attacks broke; those examples are covered, not Square's breaks).
    reach = set()
    for r in ([own] if own is not None else []) + extra:
        reach.update(_attacked(r, clean))
    covered = sorted(reach)
    evaluated = {i for r in ([own] if own is not None else []) + extra for i in r.evaluated()}
    names = ", ".join(
        ([f"Square-{own.entry.settings['n_queries']}"] if own is not None else [])
        + [f"{r.entry.name} (its Square)" for r in extra]
    )
    # AutoAttack's own rule divides by every example evaluated, correct or not.
    return _only_broken_by(
        "black_box",
        broken,
        covered,
        _white_box_entries(suite, merged),
        clean,
        float(opts["tolerance"]),
        names,
        "a gradient-free attack finds what the gradient attacks miss, a sign of masked gradients",
        denominator=len(evaluated),
    )


def _transfer(
    opts: Mapping[str, Any],
    suite: Suite,
    merged: Mapping[str, EntryResult],
    clean: list[bool | None],
    has_surrogate: bool,
) -> dict[str, Any]:
    if (off := _off("transfer", opts)) is not None:
        return off
    if not has_surrogate or TRANSFER not in merged:
        return _result(
            "transfer",
            None,
            "not run: no surrogate model given (surrogate=..., "
            "edlnet eval --surrogate CKPT): train a plain ResNet to check transfer",
        )
    result = merged[TRANSFER]
    return _only_broken_by(
        "transfer",
        broken_by(result),
        _attacked(result, clean),
        _white_box_entries(suite, merged),
        clean,
        float(opts["tolerance"]),
        "PGD transferred from the surrogate",
        "examples crafted on another model break what the white-box attacks miss, a sign of masked gradients",
    )


def _probe_keys(probe: EntryResult, prefix: str) -> list[str]:
    return [k for k in probe.values if k.startswith(prefix)]


def _true_policy(policies: list[str]) -> str | None:
    """The policy whose gradient is the model's true gradient."""
    for p in ("exact", "model"):
        if p in policies:
            return p
    return policies[0] if policies else None


def _input_gradients(opts: Mapping[str, Any], merged: Mapping[str, EntryResult]) -> dict[str, Any]:
    if (off := _off("input_gradients", opts)) is not None:
        return off
    probe = merged.get(PROBE)
    stats: dict[str, dict[str, int]] = {}
    worst_entry: dict[str, tuple[float, str]] = {}
    for result in merged.values():
        # A surrogate's or a transfer source's gradients are not the model's.
        if result.entry.follows_model_gradients and result.entry.attack not in SURROGATE_GRADIENTS:
            for policy, s in result.grad_stats.items():
                total = stats.setdefault(
                    policy, {"evaluations": 0, "nonfinite": 0, "zero": 0, "vanishing": 0}
                )
                for k in total:
                    total[k] += int(s.get(k, 0))
                if s.get("evaluations"):
                    # Judged per entry too: pooling would let many clean steps of one attack
                    # hide a failing fraction in another.
                    bad = (
                        int(s.get("nonfinite", 0)) + int(s.get("zero", 0)) + int(s.get("vanishing", 0))
                    ) / int(s["evaluations"])
                    if bad > worst_entry.get(policy, (-1.0, ""))[0]:
                        worst_entry[policy] = (bad, result.entry.name)
    probed: dict[str, dict[str, int]] = {}
    if probe is not None:
        for key in _probe_keys(probe, "grad_ok:"):
            policy = key.split(":", 1)[1].split("@")[0]
            column = [v for v in probe.values[key] if v is not None]
            vanish = probe.values.get(key.replace("grad_ok:", "vanishing:"), [])
            p = probed.setdefault(policy, {"points": 0, "bad": 0, "vanishing": 0})
            p["points"] += len(column)
            p["bad"] += sum(1 for v in column if not v)
            p["vanishing"] += sum(1 for v in vanish if v)
    policies = list(dict.fromkeys(list(probed) + list(stats)))
    if not policies:
        return _result("input_gradients", None, "not run: no gradients were evaluated")
    limit = float(opts["max_bad_fraction"])
    verdicts, parts = {}, []
    for policy in policies:
        p = probed.get(policy, {"points": 0, "bad": 0, "vanishing": 0})
        s = stats.get(policy, {"evaluations": 0, "nonfinite": 0, "zero": 0, "vanishing": 0})
        bad_probe = p["bad"] + p["vanishing"]
        bad_steps = s["nonfinite"] + s["zero"] + s["vanishing"]
        worst = worst_entry.get(policy, (0.0, "–"))
        verdicts[policy] = (
            (not p["points"] or bad_probe / p["points"] <= limit)
            and (not s["evaluations"] or bad_steps / s["evaluations"] <= limit)
            and worst[0] <= limit
        )
        parts.append(
            f"{policy}: probe {p['bad']} zero/non-finite + {p['vanishing']} vanishing of "
            f"{p['points']} points (clean, random in the ball, PGD iterates); attack steps "
            f"{s['nonfinite']} non-finite + {s['zero']} zero + {s['vanishing']} vanishing "
            f"of {s['evaluations']} (worst entry {worst[1]}: {worst[0]:.1%} bad)"
        )
    true = _true_policy(policies)
    passed = verdicts[true]
    detail = (
        "; ".join(parts) + f" (the true gradient, {true}, must have <= {limit:.0%} bad; "
        f"vanishing = norm below {opts['vanishing_fraction']:g} of the clean-image gradient's; "
        "surrogate policies are reported only)"
    )
    if not passed:
        detail += ": the model's true input gradient is non-finite, zero or vanishing"
    return _result(
        "input_gradients",
        passed,
        detail,
        steps=stats,
        probe=probed,
        by_policy={p: _STATUS[v] for p, v in verdicts.items()},
        true_policy=true,
    )


def _gradient_agreement(opts: Mapping[str, Any], merged: Mapping[str, EntryResult]) -> dict[str, Any]:
    if (off := _off("gradient_agreement", opts)) is not None:
        return off
    probe = merged.get(PROBE)
    if probe is None:
        return _result("gradient_agreement", None, "not run: no probe")
    keys = _probe_keys(probe, "fd_agree:")
    policies = list(dict.fromkeys(k.split(":", 1)[1].split("@")[0] for k in keys))
    if not policies:
        return _result("gradient_agreement", None, "not run: no clean-correct example to probe")
    parts, fractions = [], {}
    for policy in policies:
        columns = [probe.values[k] for k in keys if k.split(":", 1)[1].split("@")[0] == policy]
        values = [v for c in columns for v in c if v is not None]
        if not values:
            continue
        fractions[policy] = sum(1 for v in values if v) / len(values)
        ratios = [
            float(r)
            for k in _probe_keys(probe, f"fd_ratio:{policy}")
            for r in probe.values[k]
            if r is not None
        ]
        ratios = [r for r in ratios if math.isfinite(r)]
        median = f"{statistics.median(ratios):.3g}" if ratios else "n/a"
        parts.append(
            f"{policy} {sum(1 for v in values if v)}/{len(values)} probe points "
            f"(median measured/claimed slope {median})"
        )
    if not fractions:
        return _result("gradient_agreement", None, "not run: no clean-correct example to probe")
    true = _true_policy(list(fractions))
    passed = fractions[true] >= float(opts["min_agreement"])
    detail = (
        f"finite differences along the gradient confirm it at: {'; '.join(parts)} (the true "
        f"gradient, {true}, must agree at >= {opts['min_agreement']:.0%}; a surrogate policy "
        "is not expected to)"
    )
    if not passed:
        detail += ": the gradient the attacks follow does not describe the model"
    return _result(
        "gradient_agreement", passed, detail, fraction=fractions[true], by_policy=fractions, true_policy=true
    )


def _paired(base: list[bool | None], other: list[bool | None]) -> tuple[list[int], int, int]:
    idx = [i for i, (a, b) in enumerate(zip(base, other)) if a is not None and b is not None]
    only_other = sum(1 for i in idx if other[i] and not base[i])
    only_base = sum(1 for i in idx if base[i] and not other[i])
    return idx, only_other, only_base


def _budget_monotone(
    opts: Mapping[str, Any], suite: Suite, merged: Mapping[str, EntryResult]
) -> dict[str, Any]:
    if (off := _off("budget_monotone", opts)) is not None:
        return off
    groups: dict[str, list[Entry]] = {}
    for e in suite.entries:
        if e.kind == "attack" and e.eps is not None and not e.cascade:
            # Step sizes usually scale with the budget; entries differing in them still compare.
            settings = {k: v for k, v in e.settings.items() if k != "alpha"}
            key = json.dumps([e.attack, e.norm, e.w_grad, settings], sort_keys=True, default=str)
            groups.setdefault(key, []).append(e)
    sweeps = [sorted(g, key=lambda e: e.eps) for g in groups.values() if len({e.eps for e in g}) > 1]
    if not sweeps:
        return _result("budget_monotone", None, "the suite sweeps no budget", applicable=False)
    failures, pairs = [], 0
    for sweep in sweeps:
        for small, large in zip(sweep, sweep[1:]):
            idx, up, down = _paired(merged[small.name].robust, merged[large.name].robust)
            pairs += 1
            # Per example, not net: every example robust at the larger budget but broken at the
            # smaller one is an attack failure at the larger budget, whatever else it breaks.
            if idx and up / len(idx) > float(opts["tolerance"]):
                failures.append(
                    f"{large.name} leaves {up} of {len(idx)} examples robust that {small.name} broke"
                )
    passed = not failures
    detail = (
        f"{pairs} budget steps in {len(sweeps)} sweeps; at most {opts['tolerance']:.1%} of the "
        "examples are robust at a larger budget but broken at the smaller one"
        if passed
        else "; ".join(failures) + ": a larger budget should never help the model"
    )
    return _result("budget_monotone", passed, detail)


def _deterministic(
    opts: Mapping[str, Any], merged: Mapping[str, EntryResult], randomized: bool | None
) -> dict[str, Any]:
    if (off := _off("deterministic", opts)) is not None:
        return off
    if randomized is None:
        return _result("deterministic", None, "not run: the model's determinism was not tested")
    if not randomized:
        return _result(
            "deterministic",
            True,
            "two eval-mode passes on the same images gave identical outputs: gradient attacks need no EOT",
        )
    if EOT in merged:
        r = merged[EOT]
        return _result(
            "deterministic",
            True,
            f"the model is randomized (two eval-mode passes "
            f"differ); EOT-PGD over {r.entry.settings['eot_samples']} samples ran and "
            "counts in the worst case",
        )
    return _result(
        "deterministic",
        False,
        "the model is randomized (two eval-mode passes differ) "
        "and no EOT attack ran: single-sample gradients of a random model understate "
        "its vulnerability",
    )


def _autoattack_flags(opts: Mapping[str, Any], merged: Mapping[str, EntryResult]) -> dict[str, Any]:
    if (off := _off("autoattack_flags", opts)) is not None:
        return off
    runs = [r for r in merged.values() if r.entry.attack == "autoattack"]
    if not runs:
        return _result("autoattack_flags", None, "the suite has no AutoAttack entry", applicable=False)
    runs = [r for r in runs if _attacked(r, merged["clean"].robust)]
    if not runs:
        return _result("autoattack_flags", None, _NOTHING)
    flags = list(dict.fromkeys(f for r in runs for f in r.flags))
    policies = "; ".join(f"{r.entry.name}: policies {', '.join(r.by_policy) or 'model'}" for r in runs)
    if flags:
        return _result(
            "autoattack_flags",
            False,
            "AutoAttack flagged: " + " | ".join(flags) + f" ({policies})",
            flags=flags,
        )
    return _result(
        "autoattack_flags",
        True,
        f"AutoAttack raised no flag and saw no non-finite gradient or image ({policies})",
        flags=[],
    )


def checks_summary(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """How many checks ran, passed, failed and were skipped, and the one-line verdict."""
    counts = {
        s: sum(1 for c in checks if c["status"] == s)
        for s in ("passed", "failed", "skipped", "not applicable")
    }
    ran = counts["passed"] + counts["failed"]
    applicable = ran + counts["skipped"]
    na = f"; {counts['not applicable']} not applicable" if counts["not applicable"] else ""
    skipped = ", ".join(c["name"] for c in checks if c["status"] == "skipped")
    if counts["failed"]:
        failed = ", ".join(c["name"] for c in checks if c["status"] == "failed")
        line = f"{counts['failed']} of {ran} checks that ran FAILED ({failed})"
        if skipped:
            line += f"; skipped: {skipped}"
    elif ran == 0:
        line = "no check could run: robustness is not established"
    elif counts["skipped"]:
        line = (
            f"{ran} of {applicable} checks ran and passed; skipped: {skipped} (robustness "
            "not established until they run)"
        )
    else:
        line = f"all {ran} checks ran and passed"
    return {**counts, "ran": ran, "applicable": applicable, "total": len(checks), "line": line + na}


def checks_passed(checks: list[dict[str, Any]]) -> bool | None:
    """False if any check failed; True only if every check ran and passed; None otherwise (a
    skipped check is not a passed one)."""
    if any(c["status"] == "failed" for c in checks):
        return False
    ran = [c for c in checks if c["status"] != "not applicable"]
    if ran and all(c["status"] == "passed" for c in ran):
        return True
    return None


__all__ = ["CHECK_NAMES", "checks_passed", "checks_summary", "run_checks"]
