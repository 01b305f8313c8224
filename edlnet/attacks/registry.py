"""The attacks suites can name: ``@register_attack`` on an attack class adds it.

A registered class states in its own body what the evaluation needs to know about it:

- ``suite_name``: how suite files name it (``attack: pgd``);
- ``follows_model_gradients``: True when it follows gradients of the evaluated model, so that
  suites run it under both reweighting-gradient policies of dictionary layers by default
  (False for black-box attacks and for transfer, whose gradients are a surrogate's);
- ``norms``: the threat models it works in (the first is its default when it has no Linf).

``example_settings`` (inherited from :class:`~edlnet.attacks.base.Attack`) gives the small,
fast settings the contract tests build it with. This module imports no attack module: the
registry imports every module of ``edlnet.attacks`` on its first lookup, so every attack module can import
``register_attack`` from here without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from edlnet.registry import Registry, RegistryError

if TYPE_CHECKING:
    from .base import Attack

# Every module of edlnet.attacks is imported on the first lookup: a new attack module is found by
# being in the package.
ATTACKS: Registry[type[Attack]] = Registry("attack", package="edlnet.attacks")
# Class attributes every registered attack sets in its own body (an inherited value would let a
# subclass pass for its parent).
REQUIRED_ATTRIBUTES = ("suite_name", "follows_model_gradients", "norms")

A = TypeVar("A", bound="type[Attack]")


def register_attack(cls: A) -> A:
    """Class decorator: make the attack class available to suites under ``cls.suite_name``."""
    missing = [name for name in REQUIRED_ATTRIBUTES if name not in vars(cls)]
    if missing:
        raise RegistryError(
            f"@register_attack on {cls.__name__}: set the class attribute(s) {missing} in its "
            "body, as edlnet/attacks/fgsm.py does"
        )
    return ATTACKS.add(cls.suite_name, cls)
