"""Backbones, the registry and the converter.

Add a backbone: write an entry function ``name(num_classes=10, **options) -> nn.Module`` in a
model module (copy :mod:`edlnet.models.wide_resnet`), decorate it with
``@register_model(input_size=..., small_options=...)``: every module of this package is imported
on the registry's first lookup.
"""

from .capture import capture_layers
from .convert import convert
from .registry import ModelEntry, create_model, list_models, model_entry, register_model

__all__ = [
    "ModelEntry",
    "capture_layers",
    "convert",
    "create_model",
    "list_models",
    "model_entry",
    "register_model",
]
