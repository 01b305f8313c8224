"""The library attack a suite entry describes, built from the attack registry.

An attack entry names a registered attack (``edlnet.attacks.ATTACKS``), its norm, its budget
and its settings (constructor keywords); the evaluation adds the batch's seed. A ``transfer``
entry names its source attack instead (``settings: {source: pgd, steps: 20}``), which is built
on the surrogate model and judged on the evaluated one.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from edlnet.attacks.base import Attack, NotApplicable
from edlnet.attacks.registry import ATTACKS
from edlnet.attacks.transfer import Transfer

from .suite import Entry, SuiteError

# Source attacks a transfer entry may use on the surrogate.
TRANSFER_SOURCES = ("pgd", "fgsm")
# Constructor arguments the evaluation sets itself; a suite cannot override them.
RESERVED = {"model", "eps", "norm", "w_grad", "seed", "self"}


def build_attack(entry: Entry, model: nn.Module, seed: int, surrogate: nn.Module | None = None) -> Attack:
    """The library attack an entry describes, with the evaluation's ``seed`` for the batch.

    Policies are not applied here (see :func:`edlnet.evaluation.run_entry.run_entry_on_batch`).
    """
    cls = ATTACKS.get(entry.attack)
    settings = dict(entry.settings)
    if cls is Transfer:
        if surrogate is None:
            raise ValueError("a transfer entry needs a surrogate model (surrogate=...)")
        source = settings.pop("source", "pgd")
        if source not in TRANSFER_SOURCES:
            raise ValueError(f"transfer source must be one of {TRANSFER_SOURCES}, got {source!r}")
        source_cls = ATTACKS.get(source)
        _check_settings(source_cls, settings)
        return Transfer(
            model, source_cls(surrogate, eps=entry.eps, **_fixed(source_cls, entry, seed), **settings)
        )
    _check_settings(cls, settings)
    return cls(model, eps=entry.eps, **_fixed(cls, entry, seed), **settings)


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


def crafting_class(attack: str, settings: Mapping[str, Any]) -> type[Attack]:
    """The class that crafts an entry's perturbations, whose norms the entry's norm is one of:
    the attack's own, or a transfer entry's source."""
    cls = ATTACKS.get(attack)
    if cls is Transfer:
        source = settings.get("source", "pgd")
        # An unknown source gets its error from validate_attack_entry; its norm is then moot.
        return ATTACKS.get(source if isinstance(source, str) and source in ATTACKS else "pgd")
    return cls


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
    allowed = _parameters(cls) - RESERVED
    unknown = set(settings) - allowed
    if unknown:
        raise TypeError(
            f"{cls.__name__} has no setting(s) {sorted(unknown)}; its settings are {sorted(allowed)}"
        )


def _parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters)
