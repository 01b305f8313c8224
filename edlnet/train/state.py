"""Training state for exact resume: optimizer, grad scaler, RNG states, epoch, best metric, and
the dictionary layers' power-iteration vectors (warm starts that the weights file omits)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import CheckpointError, atomic_write
from ..layers.dict_conv import dict_layers


def save_train_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler, **fields: Any) -> None:
    state = {
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        "power_vectors": {n: m._power_vector.cpu() for n, m in dict_layers(model) if m._power_vector is not None},
        **fields,
    }
    atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def load_train_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
    except (OSError, RuntimeError, KeyError, ValueError, EOFError) as e:
        raise CheckpointError(f"cannot restore training state from {path}: {e}") from None
    scaler.load_state_dict(state["scaler"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    device = next(model.parameters()).device
    layers = dict(dict_layers(model))
    for name, v in state.get("power_vectors", {}).items():
        if name in layers:
            layers[name]._power_vector = v.to(device)
    return state
