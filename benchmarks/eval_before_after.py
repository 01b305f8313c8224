"""Before/after table of an evaluation: the same model and images evaluated by the previous
evaluation code and by the current one (per-attack accuracy, worst case, checks, seconds).

    python benchmarks/eval_before_after.py benchmarks/results/eval_before_after/<model>

reads ``before/results.json`` and ``after/results.json`` there and writes ``comparison.md``
beside them. The "before" record comes from a checkout of the earlier commit (its commit is in
the record's environment).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _status(check: dict[str, Any]) -> str:
    if "status" in check:
        return check["status"]
    return {True: "passed", False: "failed", None: "skipped"}[check.get("passed")]


def _attacks(record: dict[str, Any]) -> dict[str, tuple[float | None, float]]:
    """Every attack entry (the suite's and the checks'), accuracy and seconds."""
    out = {}
    for name, entry in record["entries"].items():
        if entry.get("kind") == "attack":
            out[name] = (entry.get("accuracy"), entry.get("seconds", 0.0))
    return out


def comparison(before: dict[str, Any], after: dict[str, Any]) -> str:
    b, a = _attacks(before), _attacks(after)
    lines = [
        f"# Evaluation before and after: suite `{after['suite']}`",
        "",
        f"{after.get('dataset')}, {after['n_examples']} images; before: commit "
        f"{before['environment'].get('git_commit')}, after: commit "
        f"{after['environment'].get('git_commit')}; CPU {after['environment'].get('cpu')}, "
        f"{after['environment'].get('threads')} threads.",
        "",
        "| entry | before: accuracy | before: s | after: accuracy | after: s |",
        "|---|---|---|---|---|",
    ]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"
    lines.append(f"| clean | {fmt(before['clean'])} | – | {fmt(after['clean'])} | – |")
    for name in list(dict.fromkeys([*b, *a])):
        acc_b, sec_b = b.get(name, (None, None))
        acc_a, sec_a = a.get(name, (None, None))
        cascade = " (cascaded)" if after["entries"].get(name, {}).get("cascade") else ""
        lines.append(
            f"| {name}{cascade} | {fmt(acc_b)} | {'–' if sec_b is None else f'{sec_b:.0f}'} | "
            f"{fmt(acc_a)} | {'–' if sec_a is None else f'{sec_a:.0f}'} |"
        )
    lines.append(
        f"| **worst case** | **{fmt(before['worst_case'])}** | – | **{fmt(after['worst_case'])}** | – |"
    )
    for name, aa in (after.get("autoattack_standard") or {}).items():
        lines.append(
            f"| AutoAttack standard ({aa['policy']} gradients, `{name}`) | – | – | {fmt(aa['accuracy'])} | – |"
        )
    n = after["n_examples"]
    lines += [
        "",
        f"Wall time: before {before['wall_seconds']:.0f} s ({before['wall_seconds'] / n:.2f} s per "
        f"image), after {after['wall_seconds']:.0f} s ({after['wall_seconds'] / n:.2f} s per image).",
        "",
        "| check | before | after |",
        "|---|---|---|",
    ]
    checks_b = {c["name"]: _status(c) for c in before["checks"]}
    for check in after["checks"]:
        lines.append(
            f"| {check['name']} | {checks_b.get(check['name'], 'did not exist')} | {check['status']} |"
        )
    lines += ["", f"After: {after['checks_summary']['line']}.", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    before = json.loads((folder / "before" / "results.json").read_text())
    after = json.loads((folder / "after" / "results.json").read_text())
    (folder / "comparison.md").write_text(comparison(before, after))
    print((folder / "comparison.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
