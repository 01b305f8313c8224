"""Access to the reference AutoAttack implementation (Croce & Hein), an optional dependency.

PyPI's ``pyautoattack`` installs it as the package ``pyautoattack``; a checkout of the
original repository installs it as ``autoattack``. Either works.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from types import ModuleType

import torch

_CANDIDATES = ("pyautoattack", "autoattack")
INSTALL_HINT = "pip install pyautoattack (a dependency of edlnet: reinstall edlnet to get it)"


def load(submodule: str) -> ModuleType:
    """Import ``<reference package>.<submodule>`` or fail with an install hint."""
    for package in _CANDIDATES:
        try:
            importlib.import_module(package)
        except ImportError:
            continue
        return importlib.import_module(f"{package}.{submodule}")
    raise ImportError(f"the reference AutoAttack implementation is not installed; {INSTALL_HINT}")


def version() -> str | None:
    """Installed version of the reference implementation, for result records."""
    for package in _CANDIDATES:
        try:
            return str(getattr(importlib.import_module(package), "__version__", "unknown"))
        except ImportError:
            continue
    return None


@contextlib.contextmanager
def preserve_rng(device: torch.device) -> Iterator[None]:
    """The reference attacks reseed the global torch RNG; keep the caller's stream intact."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


class _Collector(logging.Handler):
    """Keeps every record; passes on to the parent logger only what the caller's logging
    configuration would have shown, so forcing DEBUG here does not flood their output."""

    def __init__(self, forward_from: int, parent: logging.Logger | None) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.forward_from = forward_from
        self.parent = parent

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.parent is not None and record.levelno >= self.forward_from:
            self.parent.handle(record)


@contextlib.contextmanager
def capture_log(name: str = "auto-attack") -> Iterator[list[logging.LogRecord]]:
    """Collect every record of the reference's logger (its progress lines and its
    gradient-masking warnings) while leaving the logger as it was."""
    logger = logging.getLogger(name)
    saved = (logger.level, logger.propagate)
    handler = _Collector(logger.getEffectiveLevel(), logger.parent if logger.propagate else None)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
