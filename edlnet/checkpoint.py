"""Save and load models: safetensors weights plus a JSON of the model's name and arguments.

``save(model, path)`` writes ``path`` (a directory) containing ``model.safetensors`` and
``model.json``; ``load(path)`` rebuilds the model from the registry, re-applies each dictionary
layer's configuration (modes may have changed after creation, e.g. by two-stage training) and
loads the weights with strict key matching. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint_format import FORMAT_VERSION, META, WEIGHTS, CheckpointError
from .layers.dict_conv import dict_layers
from .models.registry import SPEC_ATTR, create_model
from .records import atomic_write


def model_spec(model: nn.Module) -> dict[str, Any]:
    spec = getattr(model, SPEC_ATTR, None)
    if spec is None:
        raise CheckpointError(
            "edlnet.save needs a model built by edlnet.create_model (it records the name and "
            "arguments used to rebuild it); for your own model save its state_dict instead"
        )
    return dict(spec)


def state_dict_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict, without DDP/compile prefixes, contiguous and on the CPU."""
    inner = getattr(model, "module", model)
    inner = getattr(inner, "_orig_mod", inner)
    return {k: v.detach().to("cpu").contiguous() for k, v in inner.state_dict().items()}


def save(model: nn.Module, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (built by ``create_model``) to the directory ``path``; returns it."""
    from safetensors.torch import save_file

    inner = getattr(getattr(model, "module", model), "_orig_mod", getattr(model, "module", model))
    path = Path(path)
    meta = {
        "format": "edlnet",
        "format_version": FORMAT_VERSION,
        "model": model_spec(inner),
        "dict_layers": {n: m.config() for n, m in dict_layers(inner)},
    }
    if extra:
        meta["extra"] = extra
    tensors = state_dict_for_saving(inner)
    atomic_write(path / WEIGHTS, lambda tmp: save_file(tensors, tmp))
    atomic_write(path / META, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, default=str)))
    return path


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    meta_file = path / META if path.is_dir() else path.with_name(META)
    if not meta_file.exists():
        raise CheckpointError(
            f"no checkpoint at {path}: expected {meta_file} and {meta_file.with_name(WEIGHTS)} "
            "written by edlnet.save"
        )
    try:
        meta = json.loads(meta_file.read_text())
        meta["model"]["name"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"corrupt checkpoint metadata {meta_file}: {e}") from None
    return meta


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a saved model and load its weights (strict). Raises :class:`CheckpointError`
    naming the file and the problem when anything is missing, corrupt or does not fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_meta(path)
    weights = (path if path.is_dir() else path.parent) / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"checkpoint {path} has no weights file {weights}")
    spec = dict(meta["model"])
    try:
        model = create_model(spec.pop("name"), **spec)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path} describes a model that cannot be built: {e}") from None
    layers = dict(dict_layers(model))
    for name, cfg in meta.get("dict_layers", {}).items():
        if name not in layers:
            raise CheckpointError(
                f"checkpoint {path} configures dictionary layer {name!r}, "
                "which the rebuilt model does not have"
            )
        layers[name].configure(**cfg)
    try:
        tensors = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(f"corrupt weights file {weights}: {e}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append(
                "shape mismatch "
                + ", ".join(
                    f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:5]
                )
            )
        raise CheckpointError(
            f"weights in {weights} do not fit model {meta['model']['name']}: " + "; ".join(parts)
        )
    model.load_state_dict(tensors, strict=True)
    model.to(map_location)
    model.eval()
    return model


def resolve_checkpoint(path: str | os.PathLike, which: str = "best") -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (``which``: best or last).

    In a run folder, a ``which`` that is missing or fails its manifest (a training run killed
    while committing it, a truncated copy) falls back, with a warning naming both, to the
    previous commit ``which.prev``, then to ``last`` and ``last.prev``."""
    import warnings

    from .train.commits import verify

    path = Path(path)
    if (path / META).exists():
        return path
    folder = path / "checkpoints"
    names = dict.fromkeys((which, which + ".prev", "last", "last.prev"))
    problems = []
    for name in names:
        candidate = folder / name
        if not (candidate / META).exists():
            # a missing `which` is news only when a commit of it was under way
            if name == which and ((folder / f"{which}.prev").exists() or (folder / f".{which}.tmp").exists()):
                problems.append(f"{candidate} is missing")
            continue
        problem = verify(candidate)
        if problem is None:
            if problems:
                warnings.warn(f"using {candidate}: " + "; ".join(problems), stacklevel=2)
            return candidate
        problems.append(f"{candidate} is unusable ({problem})")
    detail = f" ({'; '.join(problems)})" if problems else ""
    raise CheckpointError(
        f"no checkpoint at {path}: expected {path / META} or a run folder with "
        f"checkpoints/{which}/{META}{detail}"
    )
