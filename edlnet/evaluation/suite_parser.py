"""Reading suites: YAML files (or dicts) that list attacks, budgets and corruptions.

A suite file (``edlnet/suites/<name>.yaml``) looks like::

    name: table4
    description: Table 4 of the paper ...
    main: {norm: Linf, eps: 8/255}      # the threat model of the worst case
    n_examples: 1000                    # defaults for evaluate() / edlnet eval
    batch_size: 100
    entries:
      - {name: PGD-20, attack: pgd, eps: 8/255, settings: {steps: 20, alpha: 2/255}}
      - {name: FGSM, attack: fgsm, eps: 8/255}
      - {name: impulse L-1, corruption: impulse_noise, severity: 1}
    checks:                             # gradient-masking checks; omitted keys take defaults
      more_steps: {base: PGD-20, steps: 100, restarts: 2}

Each attack entry names a registered attack (``edlnet.attacks.ATTACKS``), its norm (default
``Linf`` where the attack supports it), its budget ``eps`` as an exact string (``"8/255"``,
``"0.5"``), the attack's own settings (constructor keywords), and ``w_grad``: ``both`` (the
default for attacks that follow the model's gradients: run under the ``exact`` and the
``detached`` reweighting gradient and keep the per-example worst case), ``exact``,
``detached`` or ``model`` (leave the model's own policy). Budgets are stored as fractions, so
``8/255`` stays exactly 8/255 in every record. Every attack entry is built once on a stand-in
model while reading, so a bad setting is reported before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from edlnet.attacks.base import parse_eps
from edlnet.attacks.registry import ATTACKS

from .attack_factory import crafting_class, validate_attack_entry
from .check_plan import resolve_check_options
from .corruptions import CORRUPTIONS, N_SEVERITIES
from .suite import BALL_ORDER, Budget, Entry, Suite, SuiteError, eps_text

SUITE_DIR = Path(__file__).resolve().parent.parent / "suites"
W_GRAD_CHOICES = ("both", "exact", "detached", "model")
_ENTRY_KEYS = {"name", "attack", "corruption", "norm", "eps", "settings", "w_grad", "severity", "cascade"}
_SUITE_KEYS = {"name", "description", "main", "n_examples", "batch_size", "entries", "checks"}


def list_suites() -> list[str]:
    """Names of the suites shipped with the library."""
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def load_suite(suite: str | Path | Suite | Mapping[str, Any]) -> Suite:
    """A suite by name (``"quick"``, ``"table4"``, ...), from a YAML path, or from a dict."""
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, Mapping):
        return suite_from_dict(suite, source=None)
    path = Path(suite)
    if path.suffix not in (".yaml", ".yml") or not path.exists():
        named = SUITE_DIR / f"{suite}.yaml"
        if not named.exists():
            if path.suffix in (".yaml", ".yml"):
                raise SuiteError(f"suite file {path} does not exist")
            raise SuiteError(
                f"unknown suite {str(suite)!r}: use one of {', '.join(list_suites())} "
                "or the path of a suite YAML file"
            )
        path = named
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SuiteError(f"suite file {path} is not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise SuiteError(f"suite file {path} must hold a mapping with 'name' and 'entries'")
    return suite_from_dict(data, source=_display_path(path))


def _display_path(path: Path) -> str:
    """How records name a suite file: the library's own by their place in the package, others
    relative to the working directory when inside it (records hold no machine paths)."""
    resolved = path.resolve()
    if resolved.parent == SUITE_DIR:
        return f"edlnet/suites/{resolved.name}"
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def suite_from_dict(data: Mapping[str, Any], source: str | None = None) -> Suite:
    """Validate a suite given as a dict (the content of a suite file)."""
    where = source or "suite"
    unknown = set(data) - _SUITE_KEYS
    if unknown:
        raise SuiteError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_SUITE_KEYS)}")
    name = data.get("name")
    if not name:
        raise SuiteError(f"{where}: a suite needs a 'name'")
    raw_entries = data.get("entries") or []
    if not isinstance(raw_entries, list) or not raw_entries:
        raise SuiteError(f"{where}: 'entries' must be a non-empty list")
    entries = tuple(parse_entry(e, f"{where}, entry {i + 1}") for i, e in enumerate(raw_entries))
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SuiteError(f"{where}: entry names must be unique; repeated: {duplicates}")
    if "clean" in names:
        raise SuiteError(f"{where}: 'clean' is always evaluated; do not list it as an entry")
    reserved = [n for n in names if n.startswith("check/")]
    if reserved:
        raise SuiteError(
            f"{where}: names starting with 'check/' belong to the checks' own attacks; rename {reserved}"
        )
    main = None
    if data.get("main") is not None:
        main = parse_budget(data["main"], f"{where}, main")
    checks = data.get("checks") or {}
    if not isinstance(checks, Mapping):
        raise SuiteError(f"{where}: 'checks' must be a mapping of check name to options")
    suite = Suite(
        name=str(name),
        description=str(data.get("description", "")),
        main=main,
        entries=entries,
        checks={},
        n_examples=_positive(data, "n_examples", where),
        batch_size=_positive(data, "batch_size", where),
        source=source,
    )
    # The check options refer to the suite's entries and main budget, so they come last.
    resolved = resolve_check_options(suite, checks, where)
    return Suite(**{**suite.__dict__, "checks": resolved})


def parse_budget(data: Any, where: str) -> Budget:
    """A threat model written as ``{norm: Linf, eps: 8/255}``."""
    if not isinstance(data, Mapping) or "eps" not in data:
        raise SuiteError(f"{where}: a budget is a mapping like {{norm: Linf, eps: 8/255}}")
    norm = str(data.get("norm", "Linf"))
    if norm not in BALL_ORDER:
        raise SuiteError(f"{where}: unknown norm {norm!r}; use Linf, L2 or L1")
    return Budget(norm, _eps(data["eps"], where))


def parse_entry(data: Any, where: str) -> Entry:
    """One suite entry, validated against the attack's constructor (names and values)."""
    if not isinstance(data, Mapping):
        raise SuiteError(f"{where}: an entry is a mapping with 'attack' or 'corruption'")
    unknown = set(data) - _ENTRY_KEYS
    if unknown:
        raise SuiteError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_ENTRY_KEYS)}")
    if ("attack" in data) == ("corruption" in data):
        raise SuiteError(
            f"{where}: give exactly one of 'attack' (one of {ATTACKS.names()}) "
            f"or 'corruption' (one of {sorted(CORRUPTIONS)})"
        )
    if "corruption" in data:
        return _corruption_entry(data, where)
    attack = str(data["attack"])
    if attack not in ATTACKS:
        raise SuiteError(f"{where}: unknown attack {attack!r}; use one of {ATTACKS.names()}")
    settings = dict(data.get("settings") or {})
    norm = str(data.get("norm") or _default_norm(attack, settings))
    eps = None if data.get("eps") is None else _eps(data["eps"], where)
    follows_gradients = ATTACKS.get(attack).follows_model_gradients
    w_grad = str(data.get("w_grad") or ("both" if follows_gradients else "model"))
    if w_grad not in W_GRAD_CHOICES:
        raise SuiteError(f"{where}: w_grad must be one of {W_GRAD_CHOICES}, got {w_grad!r}")
    name = str(data.get("name") or _default_name(attack, norm, eps, settings))
    cascade = data.get("cascade", False)
    if not isinstance(cascade, bool):
        raise SuiteError(f"{where}: cascade must be true or false, got {cascade!r}")
    entry = Entry(
        name=name,
        kind="attack",
        attack=attack,
        norm=norm,
        eps=eps,
        settings=settings,
        w_grad=w_grad,
        cascade=cascade,
    )
    validate_attack_entry(entry, where)
    return entry


def _corruption_entry(data: Mapping[str, Any], where: str) -> Entry:
    name = str(data["corruption"])
    if name not in CORRUPTIONS:
        raise SuiteError(f"{where}: unknown corruption {name!r}; use one of {sorted(CORRUPTIONS)}")
    severity = data.get("severity")
    if not isinstance(severity, int) or not 1 <= severity <= N_SEVERITIES:
        raise SuiteError(f"{where}: corruption entries need severity: 1..{N_SEVERITIES}, got {severity!r}")
    extra = set(data) - {"name", "corruption", "severity"}
    if extra:
        raise SuiteError(
            f"{where}: corruption entries take name, corruption and severity only; remove {sorted(extra)}"
        )
    return Entry(
        name=str(data.get("name") or f"{name}-{severity}"),
        kind="corruption",
        corruption=name,
        severity=severity,
    )


def _default_norm(attack: str, settings: Mapping[str, Any]) -> str:
    norms = crafting_class(attack, settings).norms
    return "Linf" if "Linf" in norms else norms[0]


def _default_name(attack: str, norm: str, eps: Fraction | None, settings: Mapping[str, Any]) -> str:
    label = attack.upper()
    if "steps" in settings and attack in ("pgd",):
        label += f"-{settings['steps']}"
    return f"{label} {norm}" + ("" if eps is None else f" {eps_text(eps)}")


def _eps(value: Any, where: str) -> Fraction:
    try:
        return parse_eps(value)[0]
    except ValueError as e:
        raise SuiteError(f"{where}: {e}") from None


def _positive(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or value < 1:
        raise SuiteError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value
