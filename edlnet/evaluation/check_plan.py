"""What the gradient-masking checks run: their options and the extra entries they add.

A suite file's ``checks:`` section overrides ``DEFAULTS`` (``false`` turns a check off); the
options are resolved when the suite is read, so that a bad option or a reference to a missing
entry is reported then. Before running, :func:`check_entries` lists the checks' own entries
(named ``check/...``, role ``"check"``): the gradient probe and the attacks whose results the
verdicts of :mod:`edlnet.evaluation.checks` compare with the suite's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edlnet.attacks.base import parse_eps

from .attack_factory import validate_attack_entry
from .autoattack_split import is_split_autoattack
from .suite import Entry, Suite, SuiteError

# Names of the checks' own entries.
PROBE = "check/gradients"
LARGE_EPS = "check/large-eps"
MORE_STEPS = "check/more-steps"
EOT = "check/eot-pgd"
FGSM = "check/fgsm"
SQUARE = "check/square"
TRANSFER = "check/transfer"

# Every check's options and their defaults (the thresholds are explained with the verdicts, in
# edlnet.evaluation.checks).
DEFAULTS: dict[str, dict[str, Any]] = {
    "large_eps": {"norm": "Linf", "eps": "64/255", "steps": 20, "max_accuracy": 0.02, "limit": 500},
    "more_steps": {"base": None, "steps": None, "restarts": 2, "tolerance": 0.005, "limit": 500},
    "single_step": {"tolerance": 0.005},
    "black_box": {"n_queries": 1000, "tolerance": 0.002, "limit": 500},
    "transfer": {"steps": 20, "tolerance": 0.002, "limit": 500},
    "gradients": {
        "n_probe": 64,
        "h": 1e-3,
        "max_bad_fraction": 0.01,
        "min_agreement": 0.9,
        "vanishing_fraction": 1e-3,
        "pgd_steps": 5,
    },
    "budget_monotone": {"tolerance": 0.005},
    "deterministic": {"eot_samples": 8, "steps": 20},
    "autoattack_flags": {},
}
# Square below this many queries is too weak to tell masking apart from a weak attack.
MIN_SQUARE_QUERIES = 1000


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
            out[name] = {"enabled": False, "reason": str(given.get("reason", "turned off in the suite file"))}
            continue
        given = {k: v for k, v in given.items() if k not in ("enabled", "reason")}
        bad = set(given) - set(defaults)
        if bad:
            raise SuiteError(
                f"{where}: checks.{name} has no options {sorted(bad)}; its options are {sorted(defaults)}"
            )
        out[name] = {**defaults, **given, "enabled": True}
    _resolve_references(suite, out, where)
    for entry in check_entries(suite, out, has_surrogate=True, randomized=True):
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
    for name in ("more_steps", "black_box", "transfer", "single_step"):
        if opts[name]["enabled"] and main is None:
            opts[name] = {"enabled": False, "reason": "the suite has no main budget to compare at"}
    black = opts["black_box"]
    if black["enabled"] and int(black["n_queries"]) < MIN_SQUARE_QUERIES:
        raise SuiteError(
            f"{where}: checks.black_box.n_queries must be >= {MIN_SQUARE_QUERIES} "
            f"(got {black['n_queries']}): a weaker Square cannot tell masking from "
            "a weak attack"
        )
    more = opts["more_steps"]
    if more["enabled"]:
        if more["base"] is None:
            base = next(
                (e for e in suite.entries if e.kind == "attack" and e.attack == "pgd" and e.budget == main),
                None,
            )
            if base is None:
                opts["more_steps"] = {
                    "enabled": False,
                    "reason": "the suite has no PGD entry at its main budget",
                }
            else:
                more["base"] = base.name
        else:
            base = suite.entry(more["base"])
            if base.attack != "pgd":
                raise SuiteError(
                    f"{where}: checks.more_steps.base must name a PGD entry, {base.name!r} is {base.attack}"
                )


def check_entries(
    suite: Suite,
    options: Mapping[str, Any] | None = None,
    has_surrogate: bool = False,
    randomized: bool = False,
) -> list[Entry]:
    """The extra entries the checks need (run after the suite's own, with role "check").

    The attacks that compare with the suite's run cascaded: only on the examples every earlier
    white-box attack inside the main budget left robust, so what they break is what the suite
    missed. ``randomized`` adds the EOT attack for a model whose outputs are not deterministic.
    """
    opts = options if options is not None else suite.checks
    out: list[Entry] = []
    main = suite.main
    grads = opts["gradients"]
    if grads["enabled"]:
        probe = {
            "h": float(grads["h"]),
            "pgd_steps": int(grads["pgd_steps"]),
            "vanishing_fraction": float(grads["vanishing_fraction"]),
        }
        if main is not None:
            probe.update(norm=main.norm, eps=str(main.eps))
        out.append(Entry(name=PROBE, kind="probe", settings=probe, role="check", limit=int(grads["n_probe"])))
    det = opts["deterministic"]
    if det["enabled"] and randomized and main is not None:
        # Under the true gradient only: EOTPGD judges by majority vote over its samples, which a
        # per-policy wrapper would replace by a single random pass.
        out.append(
            Entry(
                name=EOT,
                kind="attack",
                attack="eot-pgd",
                norm=main.norm,
                eps=main.eps,
                w_grad="exact",
                role="check",
                settings={"steps": int(det["steps"]), "eot_samples": int(det["eot_samples"])},
            )
        )
    large = opts["large_eps"]
    if large["enabled"]:
        out.append(
            Entry(
                name=LARGE_EPS,
                kind="attack",
                attack="pgd",
                norm=large["norm"],
                eps=parse_eps(large["eps"])[0],
                w_grad="both",
                role="check",
                settings={"steps": int(large["steps"]), "random_start": False},
                limit=large["limit"],
            )
        )
    more = opts["more_steps"]
    if more["enabled"]:
        base = suite.entry(more["base"])
        base_steps = int(base.settings.get("steps", 20))
        # "More" is never fewer than the base's own steps and restarts.
        steps = max(int(more["steps"] or 4 * base_steps), base_steps)
        restarts = max(int(more["restarts"]), int(base.settings.get("restarts", 1)))
        out.append(
            Entry(
                name=MORE_STEPS,
                kind="attack",
                attack="pgd",
                norm=base.norm,
                eps=base.eps,
                w_grad=base.w_grad,
                role="check",
                limit=more["limit"],
                settings={**base.settings, "steps": steps, "restarts": restarts},
                cascade=True,
            )
        )
    transfer = opts["transfer"]
    if transfer["enabled"] and has_surrogate:
        out.append(
            Entry(
                name=TRANSFER,
                kind="attack",
                attack="transfer",
                norm=main.norm,
                eps=main.eps,
                role="check",
                limit=transfer["limit"],
                settings={"source": "pgd", "steps": int(transfer["steps"])},
                cascade=True,
            )
        )
    black = opts["black_box"]
    # AutoAttack standard at the main budget already runs Square (5,000 queries) on the examples
    # its white-box part left robust; a second, weaker Square would only repeat it.
    # Only a full-strength one stands in: an entry whose n_queries is lowered below the minimum
    # (a quick run) does not (unset: the reference's 5,000).
    has_square = any(
        is_split_autoattack(e)
        and e.budget == main
        and int(e.settings.get("n_queries", 5000)) >= MIN_SQUARE_QUERIES
        for e in suite.entries
    )
    if black["enabled"] and not has_square:
        out.append(
            Entry(
                name=SQUARE,
                kind="attack",
                attack="square",
                norm=main.norm,
                eps=main.eps,
                role="check",
                limit=black["limit"],
                settings={"n_queries": int(black["n_queries"])},
                cascade=True,
            )
        )
    # Last, so that no cascaded check attack skips what it breaks: the single-step check needs
    # FGSM at the main budget and adds it when the suite has none.
    single = opts["single_step"]
    if (
        single["enabled"]
        and main is not None
        and not any(e.attack == "fgsm" and e.budget == main for e in suite.entries)
    ):
        out.append(
            Entry(
                name=FGSM,
                kind="attack",
                attack="fgsm",
                norm=main.norm,
                eps=main.eps,
                w_grad="both",
                role="check",
            )
        )
    return out
