"""Backbones, the registry and the converter."""

from .capture import capture_layers
from .convert import convert
from .registry import create_model, list_models, register_model

__all__ = ["capture_layers", "convert", "create_model", "list_models", "register_model"]
