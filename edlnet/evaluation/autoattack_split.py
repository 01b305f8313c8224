"""AutoAttack (standard) under both reweighting-gradient policies, without running Square twice.

AutoAttack standard is APGD-CE, APGD-T and FAB-T (white-box) followed by Square (black-box,
5,000 queries), each on the points still robust. Square reads only the model's outputs, so
the reweighting-gradient policy cannot change it; running the whole of AutoAttack once per
policy ran Square twice identically and hid it inside a "white-box" entry. Here one entry is:

1. the white-box part under the model's own policy (``exact`` for dictionary layers) on every
   clean-correct example;
2. the white-box part under each other policy (``detached``) on the examples still robust;
3. Square once, on the examples the first policy's white-box part left robust.

``values["aa_standard"]`` is then AutoAttack standard under the model's own gradients (1 then
3, cascaded as the reference does, each part with the standard version's own settings: one
APGD-CE restart, 9 target classes, Square with 5,000 queries): the number comparable with
RobustBench's (which uses all 10,000 test images; 1,000 give a standard error of about 1.5
points at 50% accuracy).
``values["white_box"]`` (1 and 2) is what the black-box check compares Square against, and
``robust`` (1, 2 and 3) is the entry's contribution to the worst case.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from edlnet.attacks import AutoAttack
from edlnet.layers.gradient_policy import W_GRAD_POLICIES, has_w_grad_policy

from .batch_result import BatchResult
from .suite import Entry

WHITE_BOX_PART = ("apgd-ce", "apgd-t", "fab-t")


def is_split_autoattack(entry: Entry) -> bool:
    """AutoAttack standard (any gradient policy): the entries this module runs, so that its
    Square part is always kept apart from the white-box part."""
    return (
        entry.kind == "attack"
        and entry.attack == "autoattack"
        and entry.settings.get("version", "standard") == "standard"
        and not entry.settings.get("attacks")
        and not entry.settings.get("parts")
    )


def run_autoattack_split(
    entry: Entry, model: nn.Module, x: Tensor, y: Tensor, todo: list[int], outcome: BatchResult, seed: int
) -> None:
    """Fill ``outcome`` for ``entry`` on the examples ``todo`` of the batch."""
    settings = {k: v for k, v in entry.settings.items() if k != "version"}
    n_queries = settings.pop("n_queries", None)
    if entry.cascade:
        raise ValueError(
            f"{entry.name}: AutoAttack standard cannot be cascaded (its `aa_standard` "
            "column must be AutoAttack's own verdict on every clean-correct example)"
        )
    if not has_w_grad_policy(model):
        policies: tuple[str | None, ...] = (None,)
    elif entry.w_grad == "both":
        policies = W_GRAD_POLICIES
    else:
        policies = (None if entry.w_grad == "model" else entry.w_grad,)
    n = x.shape[0]
    white = dict.fromkeys(todo, True)
    first_policy: dict[int, bool] = {}
    outcome.settings = {
        "white_box_part": list(WHITE_BOX_PART),
        "policies": [p or "model" for p in policies],
        "square": "once, on the examples the first policy's white-box part left robust",
    }
    for k, policy in enumerate(policies):
        run_on = [i for i in todo if white[i]]
        attack = AutoAttack(
            model,
            eps=entry.eps,
            norm=entry.norm,
            version="standard",
            parts=list(WHITE_BOX_PART),
            seed=seed,
            w_grad=policy,
            **settings,
        )
        name = policy or "model"
        outcome.settings[f"white_box:{name}"] = attack.settings()
        if run_on:
            result = attack.run(x[run_on], y[run_on])
            for pos, value in zip(run_on, result.robust.tolist()):
                white[pos] = bool(value)
            if "grad_stats" in result.info:
                outcome.grad_stats[name] = dict(result.info["grad_stats"])
            outcome.flags.extend(f for f in result.info.get("flags", []) if f not in outcome.flags)
            _note_invalid(outcome, result.info, name)
        if k == 0:
            first_policy = dict(white)
        column = list(outcome.robust)
        for i in todo:
            column[i] = white[i] if k > 0 else first_policy[i]
        outcome.by_policy[name] = column
    square_on = [i for i in todo if first_policy.get(i)]
    square = AutoAttack(
        model,
        eps=entry.eps,
        norm=entry.norm,
        version="standard",
        parts=["square"],
        seed=seed,
        n_queries=n_queries,
        **{k: v for k, v in settings.items() if k in ("batch_size", "n_classes")},
    )
    outcome.settings["square"] = square.settings()
    square_robust: dict[int, bool] = {}
    if square_on:
        result = square.run(x[square_on], y[square_on])
        square_robust = dict(zip(square_on, (bool(v) for v in result.robust.tolist())))
        _note_invalid(outcome, result.info, "square")
    outcome.values["white_box"] = [white[i] if i in white else outcome.robust[i] for i in range(n)]
    outcome.values["square"] = [square_robust.get(i) for i in range(n)]
    outcome.values["aa_standard"] = [
        (first_policy[i] and square_robust.get(i, True)) if i in first_policy else outcome.robust[i]
        for i in range(n)
    ]
    for i in todo:
        outcome.robust[i] = white[i] and square_robust.get(i, True)


def _note_invalid(outcome: BatchResult, info: dict[str, Any], part: str) -> None:
    for key, count in info.get("invalid_points", {}).items():
        outcome.flags.append(f"{part}: {count} {key.replace('_', ' ')} (never counted as a break)")
