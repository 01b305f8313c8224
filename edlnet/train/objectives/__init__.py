"""Training objectives: one module each, registered by ``@register_objective``.

An objective is an :class:`~edlnet.train.objectives.base.Objective` subclass: a ``name`` (the
config's ``objective:``), an ``Options`` dataclass (the keys of the config's
``objective_options:``, with the original paper's defaults) and ``__call__(model, x, y, ctx)``
returning the loss and the logits the training accuracy is counted on. Adding one is adding a
module to this package (copy ``trades.py``): every module here is imported on the first lookup
of the registry, so the new name is valid in configs and covered by the contract tests
(``tests/test_train_objectives.py``) without editing anything else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ...records import yaml_number
from ...registry import Registry

if TYPE_CHECKING:
    from .base import Objective

T = TypeVar("T", bound=type)

# This package's modules are imported on the registry's first lookup (not here: importing the
# registry costs nothing and creates no import cycle).
OBJECTIVES: Registry[type] = Registry("objective", package=__name__)


class OptionsError(ValueError):
    """``objective_options`` names a key the objective does not have, or a value it refuses."""


def register_objective(cls: T) -> T:
    """Class decorator: make an ``Objective`` subclass available as ``objective: <cls.name>``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute name = '<objective name in configs>'")
    if not dataclasses.is_dataclass(getattr(cls, "Options", None)):
        raise TypeError(
            f"{cls.__name__}.Options must be a dataclass of the objective's settings "
            "(NoOptions when it has none)"
        )
    return OBJECTIVES.add(name, cls)


def option_keys(objective: str) -> list[str]:
    """The keys ``objective_options`` accepts for ``objective``, in declaration order."""
    return [f.name for f in dataclasses.fields(OBJECTIVES.get(objective).Options)]


def parse_options(objective: str, options: Mapping[str, Any] | None) -> Any:
    """``objective``'s ``Options`` built from the config's ``objective_options`` (missing keys
    take the defaults); an unknown key is an error that lists the valid ones."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise OptionsError(f"objective_options must be a mapping of option: value, got {options!r}")
    keys = option_keys(objective)
    unknown = [k for k in options if k not in keys]
    if unknown:
        valid = ", ".join(keys) if keys else "none (leave objective_options empty)"
        raise OptionsError(
            f"objective {objective} has no option {', '.join(map(repr, unknown))}; its options: {valid}"
        )
    types = {f.name: f.type for f in dataclasses.fields(OBJECTIVES.get(objective).Options)}
    try:
        options = {k: yaml_number(v, types[k]) for k, v in options.items()}
    except ValueError as e:
        raise OptionsError(f"objective {objective}: objective_options {e}") from None
    return OBJECTIVES.get(objective).Options(**options)


def create_objective(objective: str, options: Mapping[str, Any] | None = None) -> Objective:
    """An instance of the objective registered as ``objective``, with ``options`` parsed."""
    return OBJECTIVES.get(objective)(parse_options(objective, options))


def options_dict(options: Any) -> dict[str, Any]:
    """An ``Options`` instance as the plain mapping a config holds (and ``config.yaml`` records)."""
    return dataclasses.asdict(options)


__all__ = [
    "OBJECTIVES",
    "OptionsError",
    "create_objective",
    "option_keys",
    "options_dict",
    "parse_options",
    "register_objective",
]
