"""Robustness suites: YAML files that list attacks, budgets and corruptions.

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

Each attack entry names a library attack (``ATTACKS``), its norm (default ``Linf`` where the
attack supports it), its budget ``eps`` as an exact string (``"8/255"``, ``"0.5"``), the
attack's own settings (constructor keywords), and ``w_grad``: ``both`` (the default for
gradient attacks: run under the ``exact`` and the ``detached`` reweighting gradient and keep the
per-example worst case), ``exact``, ``detached`` or ``model`` (leave the model's own policy).
Budgets are stored as fractions, so ``8/255`` stays exactly 8/255 in every record.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from edlnet.attacks import FGSM, PGD, AutoAttack, CarliniWagnerL2, SparseFool, Square, Transfer, parse_eps
from edlnet.attacks.base import Attack, NotApplicable
from edlnet.attacks.bpda import SurrogatePGD
from edlnet.attacks.eot import EOTPGD
from edlnet.attacks.structure_loss import ResidualPGD

from .corruptions import CORRUPTIONS, N_SEVERITIES

SUITE_DIR = Path(__file__).resolve().parent.parent / "suites"


@dataclass(frozen=True)
class AttackSpec:
    """How a suite refers to a library attack: its class and whether it follows gradients of
    the evaluated model (then it runs under both reweighting-gradient policies by default)."""

    cls: type[Attack]
    gradient: bool


ATTACKS: dict[str, AttackSpec] = {
    "fgsm": AttackSpec(FGSM, True),
    "pgd": AttackSpec(PGD, True),
    "cw-l2": AttackSpec(CarliniWagnerL2, True),
    "sparsefool": AttackSpec(SparseFool, True),
    "autoattack": AttackSpec(AutoAttack, True),
    # Attacks adapted to RISTA layers (docs/attacks.md): surrogate backward passes, a loss on
    # the layers' residuals, and expectation over randomness.
    "surrogate-pgd": AttackSpec(SurrogatePGD, True),
    "residual-pgd": AttackSpec(ResidualPGD, True),
    "eot-pgd": AttackSpec(EOTPGD, True),
    "square": AttackSpec(Square, False),
    # Gradients of the surrogate, not of the evaluated model: its policy is irrelevant.
    "transfer": AttackSpec(Transfer, False),
}
# Source attacks a transfer entry may use on the surrogate.
TRANSFER_SOURCES = ("pgd", "fgsm")
W_GRAD_CHOICES = ("both", "exact", "detached", "model")
# Constructor arguments the evaluation sets itself; a suite cannot override them.
_RESERVED = {"model", "eps", "norm", "w_grad", "seed", "self"}
_ENTRY_KEYS = {"name", "attack", "corruption", "norm", "eps", "settings", "w_grad", "severity", "cascade"}
_SUITE_KEYS = {"name", "description", "main", "n_examples", "batch_size", "entries", "checks"}
# For one radius r: the L1 ball lies inside the L2 ball, which lies inside the Linf ball.
_BALL_ORDER = {"L1": 0, "L2": 1, "Linf": 2}


class SuiteError(ValueError):
    """A suite file or dict that cannot be used; the message names the entry and the fix."""


def eps_text(eps: Fraction) -> str:
    """A budget as people write it: ``1/2`` prints as ``0.5``, pixel budgets over 255
    (``8/255``, and ``3/255`` although it reduces to ``1/85``), other fractions as fractions."""
    den = eps.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den != 1:
        if 255 % eps.denominator == 0:
            return f"{eps.numerator * (255 // eps.denominator)}/255"
        return f"{eps.numerator}/{eps.denominator}"
    text = format((Decimal(eps.numerator) / Decimal(eps.denominator)).normalize(), "f")
    return text


@dataclass(frozen=True)
class Budget:
    """A threat model: a norm ball of exact radius ``eps`` around the clean image."""

    norm: str
    eps: Fraction

    @property
    def value(self) -> float:
        return float(self.eps)

    @property
    def label(self) -> str:
        return f"{self.norm} {eps_text(self.eps)}"

    def contains(self, other: Budget) -> bool:
        """True when every perturbation allowed by ``other`` is allowed by this budget.

        For the same radius, L1 ⊂ L2 ⊂ Linf; an adversarial example inside ``other`` is then
        also one inside this budget, so ``other``'s attacks count for this worst case.
        """
        if other.norm not in _BALL_ORDER or self.norm not in _BALL_ORDER:
            return other.norm == self.norm and other.eps <= self.eps
        return _BALL_ORDER[other.norm] <= _BALL_ORDER[self.norm] and other.eps <= self.eps

    def to_dict(self) -> dict[str, Any]:
        return {"norm": self.norm, "eps": self.value, "eps_exact": str(self.eps), "label": self.label}


@dataclass(frozen=True)
class Entry:
    """One line of a suite: an attack, a corruption, or one of the evaluation's own steps.

    ``kind`` is ``"clean"``, ``"attack"``, ``"corruption"`` or ``"probe"`` (the
    gradient probe of the checks); ``role`` is ``"suite"`` for the suite's own entries and
    ``"check"`` for those the gradient-masking checks add. ``limit`` restricts an entry to the
    examples with index below it (checks use it to bound their cost); suite entries have none.
    """

    name: str
    kind: str
    attack: str | None = None
    norm: str | None = None
    eps: Fraction | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    w_grad: str = "model"
    corruption: str | None = None
    severity: int | None = None
    role: str = "suite"
    limit: int | None = None
    cascade: bool = False

    @property
    def budget(self) -> Budget | None:
        if self.kind != "attack" or self.eps is None or self.norm is None:
            return None
        return Budget(self.norm, self.eps)

    @property
    def gradient(self) -> bool:
        """True for attacks that follow the evaluated model's gradients."""
        return self.kind == "attack" and ATTACKS[self.attack].gradient

    @property
    def needs_clean(self) -> bool:
        """Attacks and probes run only on clean-correct examples (robust accuracy counts an
        example misclassified without perturbation as broken), so they need the clean result."""
        return self.kind in ("attack", "probe")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "role": self.role}
        if self.kind == "attack":
            out.update(
                attack=self.attack,
                norm=self.norm,
                w_grad=self.w_grad,
                eps=None if self.eps is None else float(self.eps),
                eps_exact=None if self.eps is None else str(self.eps),
                settings=dict(self.settings),
            )
        elif self.kind == "corruption":
            out.update(corruption=self.corruption, severity=self.severity)
        elif self.kind == "probe":
            out.update(settings=dict(self.settings))
        if self.limit is not None:
            out["limit"] = self.limit
        if self.cascade:
            out["cascade"] = True
        return out


@dataclass(frozen=True)
class Suite:
    """A parsed suite: entries in order, the main budget of its worst case, check options."""

    name: str
    description: str
    main: Budget | None
    entries: tuple[Entry, ...]
    checks: Mapping[str, Any]
    n_examples: int | None = None
    batch_size: int | None = None
    source: str | None = None

    def entry(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise SuiteError(
            f"suite {self.name!r} has no entry {name!r}; its entries are {[e.name for e in self.entries]}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "main": None if self.main is None else self.main.to_dict(),
            "entries": [e.to_dict() for e in self.entries],
            "checks": dict(self.checks),
            "n_examples": self.n_examples,
            "batch_size": self.batch_size,
            "source": self.source,
        }


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
    from .checks import resolve_check_options  # checks need Entry/Budget from this module

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
    resolved = resolve_check_options(suite, checks, where)
    return Suite(**{**suite.__dict__, "checks": resolved})


def parse_budget(data: Any, where: str) -> Budget:
    if not isinstance(data, Mapping) or "eps" not in data:
        raise SuiteError(f"{where}: a budget is a mapping like {{norm: Linf, eps: 8/255}}")
    norm = str(data.get("norm", "Linf"))
    if norm not in _BALL_ORDER:
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
            f"{where}: give exactly one of 'attack' (one of {sorted(ATTACKS)}) "
            f"or 'corruption' (one of {sorted(CORRUPTIONS)})"
        )
    if "corruption" in data:
        return _corruption_entry(data, where)
    attack = str(data["attack"])
    if attack not in ATTACKS:
        raise SuiteError(f"{where}: unknown attack {attack!r}; use one of {sorted(ATTACKS)}")
    spec = ATTACKS[attack]
    settings = dict(data.get("settings") or {})
    norm = str(data.get("norm") or _default_norm(attack, settings))
    eps = None if data.get("eps") is None else _eps(data["eps"], where)
    w_grad = str(data.get("w_grad") or ("both" if spec.gradient else "model"))
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


def validate_attack_entry(entry: Entry, where: str) -> None:
    """Build the entry's attack on a stand-in model, so a bad norm, setting name or value is
    reported when the suite is read, not hours into an evaluation."""
    try:
        build_attack(entry, nn.Identity(), seed=0, surrogate=nn.Identity())
    except NotApplicable:
        pass  # settings were read; the stand-in model just has no layers for the attack
    except TypeError as e:
        raise SuiteError(f"{where} ({entry.name}): {e}") from None
    except ValueError as e:
        raise SuiteError(f"{where} ({entry.name}): {e}") from None


def build_attack(entry: Entry, model: nn.Module, seed: int, surrogate: nn.Module | None = None) -> Attack:
    """The library attack an entry describes, with the evaluation's ``seed`` for the batch.

    Policies are not applied here (see :func:`edlnet.evaluation.entries.run_attack`).
    """
    spec = ATTACKS[entry.attack]
    settings = dict(entry.settings)
    if entry.attack == "transfer":
        if surrogate is None:
            raise ValueError("a transfer entry needs a surrogate model (surrogate=...)")
        source = settings.pop("source", "pgd")
        if source not in TRANSFER_SOURCES:
            raise ValueError(f"transfer source must be one of {TRANSFER_SOURCES}, got {source!r}")
        source_cls = ATTACKS[source].cls
        _check_settings(source_cls, settings)
        return Transfer(
            model, source_cls(surrogate, eps=entry.eps, **_fixed(source_cls, entry, seed), **settings)
        )
    _check_settings(spec.cls, settings)
    return spec.cls(model, eps=entry.eps, **_fixed(spec.cls, entry, seed), **settings)


def _fixed(cls: type[Attack], entry: Entry, seed: int) -> dict[str, Any]:
    """The norm and seed arguments, for the attacks that take them (single-norm attacks
    such as SparseFool and CW fix their norm; their entry's norm must match it)."""
    params = _parameters(cls)
    kwargs: dict[str, Any] = {"seed": seed} if "seed" in params else {}
    if "norm" in params:
        kwargs["norm"] = entry.norm
    elif entry.norm not in cls.norms:
        raise ValueError(f"{cls.__name__} works in {cls.norms[0]} only, not {entry.norm}")
    return kwargs


def _check_settings(cls: type, settings: Mapping[str, Any]) -> None:
    allowed = _parameters(cls) - _RESERVED
    unknown = set(settings) - allowed
    if unknown:
        raise TypeError(
            f"{cls.__name__} has no setting(s) {sorted(unknown)}; its settings are {sorted(allowed)}"
        )


def _parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters)


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
    cls = ATTACKS[settings.get("source", "pgd")].cls if attack == "transfer" else ATTACKS[attack].cls
    return "Linf" if "Linf" in cls.norms else cls.norms[0]


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
