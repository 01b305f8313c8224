"""Markdown report of an evaluation record (``results.md``), built from the record only."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from .suite import eps_text

_VERDICT = {"passed": "PASS", "failed": "**FAIL**", "skipped": "skipped", "not applicable": "n/a"}


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _budget(entry: Mapping[str, Any]) -> str:
    if entry.get("kind") == "corruption":
        return f"{entry['corruption']} severity {entry['severity']}"
    if entry.get("kind") != "attack":
        return "–"
    if entry.get("eps_exact") is None:
        return f"{entry['norm']} unbounded"
    return f"{entry['norm']} {eps_text(Fraction(entry['eps_exact']))}"


def _policies(summary: Mapping[str, Any]) -> str:
    accs = summary.get("accuracy_by_policy") or {}
    if len(accs) > 1:
        return ", ".join(f"{p} {_num(a)}" for p, a in accs.items())
    if summary.get("kind") != "attack" or summary.get("attack") in ("square", "transfer"):
        return "–"  # no gradient of the evaluated model is used
    policy = summary.get("w_grad")
    # "both" on a model without dictionary layers runs once, with the model's own gradients.
    return "model's own" if policy in ("both", "model") else policy


def markdown(record: Mapping[str, Any]) -> str:
    """The human-readable report: accuracies, worst case, checks, provenance."""
    lines = [f"# Robustness evaluation: suite `{record['suite']}`", ""]
    if record.get("description"):
        lines += [record["description"], ""]
    failed = [c["name"] for c in record["checks"] if c["status"] == "failed"]
    if failed:
        lines += [
            f"> **Warning: {len(failed)} gradient-masking check(s) failed "
            f"({', '.join(failed)}).** The robust accuracies below may be overestimates: "
            "the attacks may not be finding adversarial examples that exist.",
            "",
        ]
    elif record.get("checks_passed") is None:
        lines += [
            "> **Robustness not established:** not every gradient-masking check ran "
            f"({record['checks_summary']['line']}).",
            "",
        ]
    main = record.get("main_budget")
    facts = [
        f"{record['n_examples']} examples",
        f"seed {record['seed']}",
        f"batch size {record['batch_size']}",
    ]
    if record.get("dataset"):
        facts.insert(0, str(record["dataset"]))
    if main:
        facts.append(f"main threat model {main['label']}")
    lines += ["; ".join(facts) + ".", ""]
    lines += [
        "| entry | threat model | accuracy | by w_grad policy | n | seconds |",
        "|---|---|---|---|---|---|",
    ]
    entries = record["entries"]
    for name, summary in entries.items():
        if summary.get("role") == "check" or summary.get("kind") == "probe":
            continue
        if summary.get("cascade"):
            name += " (cascaded)"
        label = name
        lines.append(
            f"| {label} | {_budget(summary)} | {_num(summary['accuracy'])} | "
            f"{_policies(summary)} | {summary['n_evaluated']} | {summary['seconds']:.1f} |"
        )
    if record.get("worst_case") is not None:
        lines.append(
            f"| **worst case** | {main['label']} | **{_num(record['worst_case'])}** | "
            f"– | {record['n_examples']} | – |"
        )
    lines.append("")
    if record.get("worst_case") is not None:
        lines += [
            f"Worst case at {main['label']}: {record['worst_case_rule']}. Counted: "
            + ", ".join(f"`{n}`" for n in record["worst_case_entries"])
            + ".",
            "",
        ]
    others = {
        k: v for k, v in record.get("worst_case_by_budget", {}).items() if not main or k != main["label"]
    }
    if others:
        lines += ["| worst case at | accuracy | entries |", "|---|---|---|"]
        for label, item in others.items():
            lines.append(f"| {label} | {_num(item['accuracy'])} | {len(item['entries'])} |")
        lines.append("")
    lines += ["## Gradient-masking checks", "", "| check | result | detail |", "|---|---|---|"]
    for check in record["checks"]:
        detail = str(check["detail"]).replace("|", "/")
        lines.append(f"| {check['name']} | {_VERDICT[check['status']]} | {detail} |")
    lines += ["", f"Checks: {record['checks_summary']['line']}.", ""]
    for name, aa in (record.get("autoattack_standard") or {}).items():
        lines += [
            f"AutoAttack standard (`{name}`, {aa['policy']} gradients; comparable with "
            f"RobustBench): **{_num(aa['accuracy'])}** on {aa['n_examples']} examples; "
            f"{aa['attacks']}.",
            "",
        ]
    checks = [(n, s) for n, s in entries.items() if s.get("role") == "check" and s["kind"] == "attack"]
    if checks:
        lines += [
            "Attacks run by the checks:",
            "",
            "| entry | threat model | accuracy | by w_grad policy | n | seconds |",
            "|---|---|---|---|---|---|",
        ]
        for name, s in checks:
            lines.append(
                f"| {name} | {_budget(s)} | {_num(s['accuracy'])} | {_policies(s)} | "
                f"{s['n_evaluated']} | {s['seconds']:.1f} |"
            )
        lines.append("")
    env = record.get("environment", {})
    lines += [
        f"edlnet {env.get('edlnet')}, torch {env.get('torch')}, commit "
        f"{env.get('git_commit')}, AutoAttack reference {env.get('autoattack_reference')}; "
        f"{record.get('world_size', 1)} process(es), {record['wall_seconds']:.1f} s wall; "
        f"{record.get('created')}.",
        "",
    ]
    return "\n".join(lines)
