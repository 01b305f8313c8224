"""What a suite is once read: its entries, their budgets, and the suite itself.

An *entry* is one line of a suite (an attack or a corruption, as parsed by
:mod:`edlnet.evaluation.suite_parser`) or one of the evaluation's own steps (the clean pass,
the checks' attacks and their gradient probe). Running an entry on one batch gives a
:class:`~edlnet.evaluation.batch_result.BatchResult`; its results over all examples are an
:class:`~edlnet.evaluation.merge.EntryResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from edlnet.attacks.registry import ATTACKS

# For one radius r: the L1 ball lies inside the L2 ball, which lies inside the Linf ball.
BALL_ORDER = {"L1": 0, "L2": 1, "Linf": 2}


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
        if other.norm not in BALL_ORDER or self.norm not in BALL_ORDER:
            return other.norm == self.norm and other.eps <= self.eps
        return BALL_ORDER[other.norm] <= BALL_ORDER[self.norm] and other.eps <= self.eps

    def to_dict(self) -> dict[str, Any]:
        return {"norm": self.norm, "eps": self.value, "eps_exact": str(self.eps), "label": self.label}


@dataclass(frozen=True)
class Entry:
    """One line of a suite: an attack, a corruption, or one of the evaluation's own steps.

    ``kind`` is ``"clean"``, ``"attack"``, ``"corruption"`` or ``"probe"`` (the
    gradient probe of the checks); ``role`` is ``"suite"`` for the suite's own entries and
    ``"check"`` for those the gradient-masking checks add. ``attack`` is a name in the attack
    registry (:data:`edlnet.attacks.ATTACKS`). ``limit`` restricts an entry to the examples
    with index below it (checks use it to bound their cost); suite entries have none.
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
    def follows_model_gradients(self) -> bool:
        """True for attacks that follow the evaluated model's gradients (white-box attacks)."""
        return self.kind == "attack" and ATTACKS.get(self.attack).follows_model_gradients

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
