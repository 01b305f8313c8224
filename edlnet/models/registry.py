"""Model registry and factory: thin entry functions registered by name (as in timm).

``create_model(name, num_classes, dl=None, dl_layers=None, **dl_options)`` builds the plain
network, then converts its convolutions to dictionary layers (all of them, or the first
``dl_layers`` in module order). The name and arguments are recorded on the model so that
``edlnet.save``/``edlnet.load`` can rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
SPEC_ATTR = "_edlnet_spec"


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register an entry function under its own name."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered model."""
    _import_all()
    return sorted(_REGISTRY)


def _import_all() -> None:
    # Importing the model modules runs their @register_model decorators.
    from . import pursuit_nets, resnet, wide_resnet  # noqa: F401


def create_model(
    name: str, num_classes: int = 10, dl: str | None = None, dl_layers: int | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered model.

    Args:
        name: see :func:`list_models`.
        dl: ``None`` (plain convolutions), ``"vanilla"``, ``"robust"`` or ``"elastic"``: replace
            convolutions by :class:`~edlnet.DictConv2d` in that mode.
        dl_layers: replace only the first N convolutions (module order); ``None`` = all.
        kwargs: architecture options of the entry function (e.g. ``width``, ``stats``) and
            dictionary-layer options (``n_steps``, ``lam``, ``beta``, ``step``, ``eps``, ...).
    """
    from ..layers.dict_conv import DictConv2d
    from .convert import convert

    _import_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}")
    dl_keys = set(DictConv2d(1, 1, 1).config()) | {"beta"}
    dl_options = {k: kwargs.pop(k) for k in list(kwargs) if k in dl_keys}
    own = getattr(_REGISTRY[name], "builds_own_dictionaries", False)
    if own and (dl is not None or dl_layers is not None):
        raise ValueError(
            f"model {name!r} builds its own pursuit layers; dl and dl_layers do not apply "
            "(pass its own options, e.g. n_iters, lam)"
        )
    if dl_options and dl is None and not own:
        raise ValueError(
            f"dictionary options {sorted(dl_options)} given but dl=None; pass dl='vanilla'|'robust'|'elastic'"
        )
    try:
        if own:
            model = _REGISTRY[name](num_classes=num_classes, **kwargs, **dl_options)
        else:
            model = _REGISTRY[name](num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for model {name!r}: {e}") from None
    if dl is not None:
        convert(model, mode=dl, max_layers=dl_layers, **dl_options)
    spec = dict(name=name, num_classes=num_classes, dl=dl, dl_layers=dl_layers, **kwargs, **dl_options)
    setattr(model, SPEC_ATTR, spec)
    return model
