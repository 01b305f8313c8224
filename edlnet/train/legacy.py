"""Configs written before ``objective_options``: their flat objective keys and where each went.

Until objectives became one module each, ``TrainConfig`` held every objective's settings as flat
fields, and every run folder's ``config.yaml`` (including the committed ones under
``benchmarks/results/``) lists all six. The rule that reads them: an old key ``<objective>_<option>``
(the table below) sets ``objective_options.<option>`` when the config's final ``objective`` is
``<objective>``, and is dropped otherwise (the old code never read it then, so dropping it changes
nothing the run computed). One ``FutureWarning`` per config names each old key and its new place.

Explicit ``objective_options`` and old keys may both appear (an old run folder resumed with
``--set objective_options.beta=2``, or a new one with ``--set trades_beta=2``): assignments are
replayed in the order the file and the overrides made them, so the last one wins, as for any key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# old flat key -> (the objective it configured, its option there)
OLD_OBJECTIVE_FIELDS: dict[str, tuple[str, str]] = {
    "trades_beta": ("trades", "beta"),
    "mart_beta": ("mart", "beta"),
    "hat_gamma": ("hat", "gamma"),
    "hat_beta": ("hat", "beta"),
    "hat_h": ("hat", "h"),
    "hat_std_model": ("hat", "std_model"),
}

_RESET = object()  # marks `objective_options: {...}` given whole: earlier keys are replaced


def new_key(key: str, objective: str) -> str:
    """Where a dotted config key lives now: ``trades_beta`` -> ``objective_options.beta`` for a
    trades run; any other key (or an old key of another objective) is returned unchanged."""
    old = OLD_OBJECTIVE_FIELDS.get(key)
    return f"objective_options.{old[1]}" if old and old[0] == objective else key


class OptionAssignments:
    """The assignments to ``objective_options`` a config file and its overrides make, in order,
    old flat keys included; :meth:`resolve` replays them once the objective is known."""

    def __init__(self) -> None:
        # (objective the assignment applies to, or None for any; option; value; old key or None)
        self._steps: list[tuple[str | None, Any, Any, str | None]] = []

    def set_all(self, options: Any) -> None:
        """``objective_options: {...}``: the whole mapping (replaces what was set before)."""
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise ValueError(f"objective_options must be a mapping of option: value, got {options!r}")
        self._steps.append((None, _RESET, None, None))
        for key, value in options.items():
            self.set(str(key), value)

    def set(self, option: str, value: Any) -> None:
        """``objective_options.<option>=value``."""
        self._steps.append((None, option, value, None))

    def set_old(self, old_key: str, value: Any) -> None:
        """An old flat key, e.g. ``trades_beta: 6``."""
        objective, option = OLD_OBJECTIVE_FIELDS[old_key]
        self._steps.append((objective, option, value, old_key))

    def resolve(self, objective: str) -> tuple[dict[str, Any], str | None]:
        """The ``objective_options`` of a config whose objective is ``objective``, and the
        deprecation note to show (None when no old key was used)."""
        options: dict[str, Any] = {}
        moved: list[str] = []
        dropped: list[str] = []
        for target, option, value, old_key in self._steps:
            if option is _RESET:
                options = {}
            elif target is None or target == objective:
                options[option] = value
            if old_key is not None:
                (moved if target == objective else dropped).append(old_key)
        if not moved and not dropped:
            return options, None
        parts = [f"{k} -> objective_options.{OLD_OBJECTIVE_FIELDS[k][1]}" for k in dict.fromkeys(moved)]
        if dropped:
            parts.append(
                f"{', '.join(dict.fromkeys(dropped))} dropped (options of objectives other than "
                f"{objective}, which this run never read)"
            )
        written = ", ".join(f"{k}: {v}" for k, v in options.items())
        note = (
            f"old flat objective keys (before objective_options): {'; '.join(parts)}; write "
            f"objective_options: {{{written}}} instead"
        )
        return options, note
