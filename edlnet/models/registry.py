"""Model registry and factory: thin entry functions registered by name (as in timm).

An entry function ``fn(num_classes=10, **options) -> nn.Module`` builds the plain network;
``@register_model(input_size=(3, 64, 64), ...)`` records it under its own name together with
what the rest of the library needs to know about it (:class:`ModelEntry`). The registry imports
the model modules on first lookup (``importlib``, see :class:`edlnet.registry.Registry`), so
the model modules import this one and nothing here imports them back.

``create_model(name, num_classes, dl=None, dl_layers=None, **dl_options)`` builds the plain
network, then converts its convolutions to dictionary layers (all of them, or the first
``dl_layers`` in module order). The name and arguments are recorded on the model so that
``edlnet.save``/``edlnet.load`` can rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from torch import nn

from ..layers.dict_conv import DictConv2d
from ..registry import Registry
from .convert import convert

SPEC_ATTR = "_edlnet_spec"


CIFAR_INPUT = (3, 32, 32)

EntryFn = TypeVar("EntryFn", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model.

    Attributes:
        name: the registered name (the entry function's name).
        build: the entry function, ``build(num_classes=..., **options)``.
        input_size: ``(channels, height, width)`` of the images the model is built for.
        builds_own_dictionaries: the model's layers are already sparse-coding layers (pursuit
            networks): ``create_model`` hands dictionary options (``lam``, ``beta``, ...) to the
            entry function instead of converting ``nn.Conv2d`` modules, and refuses ``dl``.
        small_options: options that build the cheapest instance of the architecture, for the
            contract tests and quick checks (e.g. ``{"width": 4}``).
    """

    name: str
    build: Callable[..., nn.Module]
    input_size: tuple[int, int, int] = CIFAR_INPUT
    builds_own_dictionaries: bool = False
    small_options: Mapping[str, Any] = field(default_factory=dict)


# Every module of edlnet.models is imported on the first lookup: a new model file is found by
# being in the package.
MODELS: Registry[ModelEntry] = Registry("model", package="edlnet.models")


@overload
def register_model(fn: EntryFn, /) -> EntryFn: ...


@overload
def register_model(
    *,
    input_size: tuple[int, int, int] = CIFAR_INPUT,
    builds_own_dictionaries: bool = False,
    small_options: Mapping[str, Any] | None = None,
) -> Callable[[EntryFn], EntryFn]: ...


def register_model(
    fn: EntryFn | None = None,
    /,
    *,
    input_size: tuple[int, int, int] = CIFAR_INPUT,
    builds_own_dictionaries: bool = False,
    small_options: Mapping[str, Any] | None = None,
) -> EntryFn | Callable[[EntryFn], EntryFn]:
    """Decorator: register an entry function under its own name (see :class:`ModelEntry`).

    ``@register_model`` alone registers a model for 3×32×32 inputs that converts by ``dl=``;
    ``@register_model(input_size=..., builds_own_dictionaries=..., small_options=...)`` says
    otherwise. The function is returned unchanged.
    """
    if len(input_size) != 3:
        raise ValueError(f"input_size is (channels, height, width), e.g. (3, 32, 32); got {input_size}")
    channels, height, width = (int(n) for n in input_size)

    def register(entry_fn: EntryFn) -> EntryFn:
        entry = ModelEntry(
            name=entry_fn.__name__,
            build=entry_fn,
            input_size=(channels, height, width),
            builds_own_dictionaries=builds_own_dictionaries,
            small_options=dict(small_options or {}),
        )
        MODELS.add(entry.name, entry)
        return entry_fn

    return register if fn is None else register(fn)


def list_models() -> list[str]:
    """Names of every registered model."""
    return MODELS.names()


def model_entry(name: str) -> ModelEntry:
    """The registry's record of model ``name``; an unknown name lists the registered ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(MODELS.names())}")
    return MODELS.get(name)


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
    entry = model_entry(name)
    # The option names come from a throwaway layer. Building it draws from the global RNG, so
    # every model's initial weights depend on this draw: keep it, or the same seed would no
    # longer give the same model as before.
    dl_keys = set(DictConv2d(1, 1, 1).config()) | {"beta"}
    dl_options = {k: kwargs.pop(k) for k in list(kwargs) if k in dl_keys}
    own = entry.builds_own_dictionaries
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
            model = entry.build(num_classes=num_classes, **kwargs, **dl_options)
        else:
            model = entry.build(num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for model {name!r}: {e}") from None
    if dl is not None:
        convert(model, mode=dl, max_layers=dl_layers, **dl_options)
    spec = dict(name=name, num_classes=num_classes, dl=dl, dl_layers=dl_layers, **kwargs, **dl_options)
    setattr(model, SPEC_ATTR, spec)
    return model
