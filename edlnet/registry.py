"""One registry type for everything a newcomer adds by writing one file: attacks, objectives,
models, datasets and analyses.

A registry is filled by the decorator on the thing it registers (``@register_attack`` on an
attack class, ``@register_model(input_size=...)`` on a model's entry function, ...); the package
that owns the registry imports its own modules once, on first lookup, so that every decorator has
run. This module imports nothing from edlnet, so any package can own a registry without an
import cycle.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(ValueError):
    """An unknown name, or a name registered twice."""


@dataclass
class Registry(Generic[T]):
    """Names to registered things (classes, functions or records), filled by decorators.

    ``kind`` names what is registered in error messages ("attack", "model", ...). On the first
    lookup (never at import time of the registry itself) the registry imports ``modules``
    (absolute names) and every module of ``package`` whose name does not start with ``_``, so
    that all their decorators have run: a new module in ``package`` is found by being there.
    """

    kind: str
    modules: tuple[str, ...] = ()
    package: str | None = None
    _items: dict[str, T] = field(default_factory=dict)
    _loaded: bool = False

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name``; a second registration of a name is an error."""
        if name in self._items and self._items[name] is not item:
            raise RegistryError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def decorator(self, name: str | None = None, **attributes: Any) -> Callable[[T], T]:
        """``@registry.decorator(name)``: register the decorated object under ``name`` (default:
        its ``name`` attribute, else its ``__name__``), after setting ``attributes`` on it."""

        def register(item: T) -> T:
            for key, value in attributes.items():
                setattr(item, key, value)
            key = name or getattr(item, "name", None) or item.__name__
            return self.add(str(key), item)

        return register

    def load(self) -> None:
        """Import the modules whose decorators fill this registry (once)."""
        if not self._loaded:
            self._loaded = True
            for module in (*self.modules, *package_modules(self.package)):
                importlib.import_module(module)

    def get(self, name: str) -> T:
        """The item registered under ``name``; an unknown name lists the registered ones."""
        self.load()
        if name not in self._items:
            raise RegistryError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.load()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        self.load()
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load()
        return len(self._items)


def package_modules(package: str | None) -> list[str]:
    """The public modules of ``package`` (absolute names, sorted), listed from its folder
    without importing them; ``[]`` for ``None``."""
    if package is None:
        return []
    paths = importlib.import_module(package).__path__
    return sorted(f"{package}.{m.name}" for m in pkgutil.iter_modules(paths) if not m.name.startswith("_"))
