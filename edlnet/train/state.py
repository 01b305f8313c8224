"""Training state for exact resume: optimizer, grad scaler, RNG states, epoch, best metric, and
the dictionary layers' power-iteration vectors (warm starts that the weights file omits).

Format. ``train_state.safetensors`` holds every tensor (optimizer buffers, torch/CUDA RNG states,
power vectors) and ``train_state.json`` everything else: the structure, with each tensor
replaced by ``{"__tensor__": key}``, plus scalars and the Python and NumPy RNG states as plain
numbers. Neither file can run code when read, so opening someone else's run folder is safe. JSON
floats are written with ``repr`` (shortest round trip), tuples, non-string keys and non-finite
floats are tagged, so the state round-trips exactly.

Old run folders have ``train_state.pt`` (a pickle). It is read with ``weights_only=True`` and an
allow-list of the NumPy types a NumPy RNG state needs (:func:`legacy_safe_globals`); a file that
needs anything else is refused with a message naming it and ``--trust-pickle``, the flag that
reads it as a full pickle (only for files you trust).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import CheckpointError
from ..layers.dict_conv import dict_layers

STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"
LEGACY_STATE = "train_state.pt"
STATE_FORMAT = 1
_TAGS = ("__tensor__", "__tuple__", "__items__", "__float__", "__ndarray__", "__npscalar__")


# -- exact JSON encoding ---------------------------------------------------------------------------
def encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` as JSON-able data; tensors go into ``tensors`` (CPU, contiguous, own storage)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.dtype.str, "shape": list(obj.shape), "data": obj.ravel().tolist()}
    if isinstance(obj, np.generic):
        return {"__npscalar__": obj.dtype.str, "value": obj.item()}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode(v, tensors) for k, v in obj.items()}
        return {"__items__": [[encode(k, tensors), encode(v, tensors)] for k, v in obj.items()]}
    raise TypeError(
        f"cannot store {type(obj).__name__} in the training state (tensors, numbers, "
        "strings, lists, tuples, dicts and numpy arrays only)"
    )


def decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(obj, list):
        return [decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) >= 1 and next(iter(obj)) in _TAGS:
        tag = next(iter(obj))
        if tag == "__tensor__":
            if obj[tag] not in tensors:
                raise CheckpointError(
                    f"the training state refers to tensor {obj[tag]!r}, which {STATE_TENSORS} does not hold"
                )
            return tensors[obj[tag]]
        if tag == "__tuple__":
            return tuple(decode(v, tensors) for v in obj[tag])
        if tag == "__items__":
            return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in obj[tag]}
        if tag == "__float__":
            return float(obj[tag])
        if tag == "__ndarray__":
            return np.array(obj["data"], dtype=np.dtype(obj[tag])).reshape(obj["shape"])
        return np.dtype(obj[tag]).type(obj["value"])
    return {k: decode(v, tensors) for k, v in obj.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


# -- what the state holds ----------------------------------------------------------------------------
def collect_train_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, **fields: Any
) -> dict[str, Any]:
    """Everything besides the weights that an exact resume needs, as one nested dict."""
    return {
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
        "power_vectors": {
            n: m._power_vector.cpu() for n, m in dict_layers(model) if m._power_vector is not None
        },
        **fields,
    }


def write_train_state(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` as ``train_state.safetensors`` + ``train_state.json`` into ``folder``
    (a checkpoint folder being assembled: the caller makes the folder appear atomically)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    data = {"format": "edlnet-train-state", "format_version": STATE_FORMAT, "state": encode(state, tensors)}
    folder = Path(folder)
    save_file(tensors, str(folder / STATE_TENSORS))
    (folder / STATE_JSON).write_text(json.dumps(data, allow_nan=False))


def read_train_state(folder: Path, trust_pickle: bool = False) -> dict[str, Any]:
    """The state saved in checkpoint ``folder``: the safetensors + JSON pair, or an old
    ``train_state.pt`` (see the module docstring)."""
    folder = Path(folder)
    if (folder / STATE_JSON).exists():
        return _read_safe(folder)
    if (folder / LEGACY_STATE).exists():
        return _read_legacy(folder / LEGACY_STATE, trust_pickle)
    raise CheckpointError(
        f"{folder} holds no training state ({STATE_JSON} + {STATE_TENSORS}); "
        "it cannot be resumed (edlnet.load still reads its weights)"
    )


def _read_safe(folder: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        data = json.loads((folder / STATE_JSON).read_text())
        tensors = load_file(str(folder / STATE_TENSORS))
        if data.get("format") != "edlnet-train-state":
            raise ValueError("not an edlnet training state")
        if int(data.get("format_version", 0)) > STATE_FORMAT:
            raise ValueError(
                f"format version {data['format_version']} is newer than this edlnet "
                f"reads ({STATE_FORMAT}); upgrade edlnet"
            )
        return decode(data["state"], tensors)
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:
        raise CheckpointError(f"cannot read the training state in {folder}: {e}") from None


# The globals a NumPy RNG state (an uint32 array) needs, under the names NumPy 2 and NumPy 1 pickle
# them with; nothing here can run code of the file's choosing.
def legacy_safe_globals() -> list:
    core = getattr(np, "_core", None) or np.core
    reconstruct = core.multiarray._reconstruct
    dtype_classes = [type(np.dtype(t)) for t in (np.uint32, np.float64, np.int64)]
    named = [
        (reconstruct, "numpy._core.multiarray._reconstruct"),
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (np.ndarray, "numpy.ndarray"),
        (np.dtype, "numpy.dtype"),
    ]
    named += [(c, f"numpy.dtypes.{c.__name__}") for c in dtype_classes]
    return named


def _read_legacy(path: Path, trust_pickle: bool) -> dict[str, Any]:
    import pickle

    try:
        if trust_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        allowed = legacy_safe_globals()
        try:
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch < 2.5 takes plain callables only
            with torch.serialization.safe_globals([g for g, _ in allowed]):
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        detail = next((line.strip() for line in first if "GLOBAL" in line), first[0] if first else "")
        raise CheckpointError(
            f"refusing to load {path}: it is a pickle that needs more than tensors, numbers and NumPy "
            f"RNG arrays ({detail}), and unpickling it could run code. If you trust who wrote it, "
            "resume with --trust-pickle (Python: trust_pickle=True)"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise CheckpointError(f"cannot read the training state {path}: {e}") from None


def apply_train_state(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    where: str = "the checkpoint",
) -> None:
    """Restore optimizer, scaler, RNG states and power vectors from ``state``."""
    try:
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"cannot restore the training state of {where}: {e}") from None
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    device = next(model.parameters()).device
    layers = dict(dict_layers(model))
    for name, v in state.get("power_vectors", {}).items():
        if name in layers:
            layers[name]._power_vector = v.to(device)


def load_train_state(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """Read the state of checkpoint ``folder`` and apply it; returns it (epoch, best, ...)."""
    state = read_train_state(folder, trust_pickle)
    apply_train_state(state, model, optimizer, scaler, where=str(folder))
    return state
