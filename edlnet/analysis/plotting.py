"""Figures without pyplot: ``matplotlib.figure.Figure`` rendered by the Agg canvas, so the
library never touches the global pyplot state or needs a display."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib import cm, colors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    size: tuple[float, float] = (5.0, 3.6),
    squeeze: bool = False,
    **kwargs: Any,
) -> tuple[Figure, np.ndarray]:
    """A figure with an (nrows, ncols) grid of axes; ``size`` is per panel, in inches."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write a PNG (parent folders created) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def depth_colors(n: int, cmap: str = "viridis") -> list[Any]:
    """``n`` colours running along a colormap: shallow layers dark, deep layers light."""
    colormap = matplotlib.colormaps[cmap]
    return [colormap(i / max(n - 1, 1)) for i in range(n)]


def add_depth_colorbar(
    fig: Figure, axes: Sequence[Any], n: int, label: str = "layer index", cmap: str = "viridis"
) -> None:
    """A colorbar that explains :func:`depth_colors`."""
    mappable = cm.ScalarMappable(colors.Normalize(0, max(n - 1, 1)), cmap)
    fig.colorbar(mappable, ax=list(axes), label=label, shrink=0.8)


def image_hwc(x: torch.Tensor) -> np.ndarray:
    """A (3, H, W) image in [0, 1] as an (H, W, 3) array for ``imshow`` (other channel counts:
    their mean, as grey)."""
    if x.shape[0] != 3:
        x = x.mean(0, keepdim=True).expand(3, -1, -1)
    return x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def mark_switch(ax: Any, epoch: float | None, label: str = "Vanilla→Elastic") -> None:
    """A dashed vertical line at the two-stage switch (between the last Vanilla epoch and the
    first Elastic one)."""
    if epoch is not None:
        ax.axvline(epoch, color="crimson", linestyle="--", linewidth=1, label=label)
