"""What an analysis looks at: a model loaded from a run folder or a checkpoint, the run folder
it came from (metrics, config), a label for plots, and a few test images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import CheckpointError, load, read_meta, resolve_checkpoint
from ..layers.dict_conv import dict_layers
from .run_files import RUN_MARKERS, run_config


@dataclass
class ModelSource:
    """A loaded model (eval mode, fp32) with where it came from.

    ``run_dir`` is the training run folder when the model came from one (a run folder, or a
    checkpoint inside ``RUN/checkpoints/``), else ``None``. ``label`` names the model in plots
    and tables: its kind (``elastic``, ``vanilla``, ``plain``, ``DP-res`` …), made longer by
    :func:`unique_labels` only where two models would otherwise share it."""

    label: str
    model: nn.Module
    checkpoint: Path
    run_dir: Path | None
    spec: dict[str, Any]
    fixed_label: bool = False

    @property
    def kind(self) -> str:
        return model_kind(self.model)


def find_run_dir(path: str | Path) -> Path | None:
    """The run folder of ``path``: itself when it holds run files, the folder two levels up for
    a checkpoint at ``RUN/checkpoints/<which>``, else ``None``."""
    path = Path(path).resolve()
    for candidate in (path, path.parent.parent):
        if any((candidate / m).exists() for m in RUN_MARKERS):
            return candidate
    return None


def model_kind(model: nn.Module) -> str:
    """Short description for labels: the dictionary mode(s), the pursuit method or ``plain``."""
    pursuit = getattr(model, "pursuit", None)
    if pursuit is not None and hasattr(pursuit, "method"):
        suffix = "-res" if any(len(e) > 1 for e in pursuit.parents) else ""
        return {"thresholding": "L-TP", "layered": "L-BP", "deep": "DP"}[pursuit.method] + suffix
    modes = sorted({m.mode for _, m in dict_layers(model)})
    return "+".join(modes) if modes else "plain"


def load_source(
    path: str | Path, which: str = "best", device: str | torch.device = "cpu", label: str | None = None
) -> ModelSource:
    """Load the model at ``path`` (a run folder or a checkpoint folder) in eval mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; give a run folder written by "
            "`edlnet train` or a checkpoint folder written by edlnet.save"
        )
    try:
        ckpt = resolve_checkpoint(path, which)
        model = load(ckpt, map_location=device).float().eval()
        spec = read_meta(ckpt)["model"]
    except CheckpointError as e:
        raise ValueError(str(e)) from None
    run_dir = find_run_dir(path)
    return ModelSource(
        label or model_kind(model), model, ckpt, run_dir, dict(spec), fixed_label=label is not None
    )


def _origin(s: ModelSource, width: int = 28) -> str:
    """``run-name/best`` (shortened from the left) or the checkpoint folder's name."""
    if s.run_dir is None:
        return s.checkpoint.name
    name = s.run_dir.name if len(s.run_dir.name) <= width else "…" + s.run_dir.name[-width:]
    return f"{name}/{s.checkpoint.name}" if s.checkpoint.parent.name == "checkpoints" else name


def unique_labels(sources: list[ModelSource]) -> None:
    """Make labels distinct so legends and tables are unambiguous: labels that collide get
    their origin appended (``elastic (run/last)``), then ``#2``, ``#3`` … if still equal."""
    counts: dict[str, int] = {}
    for s in sources:
        counts[s.label] = counts.get(s.label, 0) + 1
    for s in sources:
        if counts[s.label] > 1 and not s.fixed_label:
            s.label = f"{s.label} ({_origin(s)})"
    seen: dict[str, int] = {}
    for s in sources:
        n = seen.get(s.label, 0) + 1
        seen[s.label] = n
        if n > 1:
            s.label = f"{s.label} #{n}"


def sample_images(
    n: int,
    run_dir: Path | None = None,
    dataset: str | None = None,
    root: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """The first ``n`` test images (float in [0, 1]), labels and class names of ``dataset``
    (default: the run's dataset, else the bundled CIFAR-10 sample). The first images, not a
    random draw, so every analysis and every model sees the same ones."""
    from ..data import load_dataset

    if n < 1:
        raise ValueError(f"--n-images must be >= 1, got {n}")
    cfg = run_config(run_dir)
    name = dataset or cfg.get("dataset") or "cifar10-sample"
    data = load_dataset(name, root if root is not None else cfg.get("data_root"))
    x = data.x_test[:n].to(device).float() / 255
    y = data.y_test[:n].to(device)
    return x, y, data.class_names
