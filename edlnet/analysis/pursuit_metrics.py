"""Deep pursuit analyses (Cazenavette, Murdock & Lucey, CVPR 2021): reconstruction error per
layer per iteration (Figure 8), and the deep frame potential and mutual coherence of the global
structured dictionary (Figures 9–10, after Murdock & Lucey 2020).

For the unit-normalized global dictionary with Gram matrix G (n atoms of dimension m):
frame potential ‖G‖_F² (≥ max(n, n²/m), the Welch-type lower bound, reached by tight frames),
its mean over entries ‖G‖_F²/n², and mutual coherence max_{i≠j} |G_ij| (≥ √((n−m)/(m(n−1)))
for n > m, the Welch bound).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..tables import Table
from .base import AnalysisContext, AnalysisResult, register_analysis
from .plotting import depth_colors, new_figure


def is_pursuit(model: nn.Module) -> bool:
    return hasattr(model, "global_gram") and hasattr(model, "reconstruction_errors")


def any_pursuit(ctx: AnalysisContext) -> bool:
    """A pursuit network is among the models (the target or a ``--compare`` one)."""
    return any(is_pursuit(s.model) for s in ctx.sources)


def frame_metrics(gram: torch.Tensor, signal_dim: int) -> dict[str, float]:
    """Frame potential, its per-entry mean, mutual coherence and their lower bounds."""
    n = gram.shape[0]
    off = gram - torch.diag(torch.diagonal(gram))
    fp = float(gram.pow(2).sum())
    m = signal_dim
    return {
        "atoms": n,
        "signal_dim": m,
        "frame_potential": fp,
        "frame_potential_mean": fp / n**2,
        "frame_potential_bound": float(max(n, n * n / m)),
        "mutual_coherence": float(off.abs().max()),
        "coherence_welch_bound": math.sqrt((n - m) / (m * (n - 1))) if n > m else 0.0,
    }


@torch.no_grad()
def pursuit_metrics(
    model: nn.Module, x: torch.Tensor, probe_size: int = 8
) -> tuple[torch.Tensor, dict[str, float]]:
    """(reconstruction errors (iterations + 1, layers), frame metrics) for a pursuit model."""
    if not is_pursuit(model):
        raise ValueError(
            f"{type(model).__name__} is not a pursuit network; build one with "
            "create_model('deep_pursuit' | 'deep_pursuit_residual' | "
            "'layered_basis_pursuit' | 'layered_thresholding_pursuit')"
        )
    errors = model.reconstruction_errors(x)
    dictionary = model.global_dictionary((probe_size, probe_size))
    gram = model.global_gram((probe_size, probe_size))
    return errors, frame_metrics(gram, dictionary.shape[0])


@register_analysis(
    "pursuit",
    help="deep pursuit reconstruction error per iteration, frame potential, mutual coherence (Figs. 8-10)",
    applies=any_pursuit,
    needs="a pursuit network among the models (e.g. model=deep_pursuit_residual)",
    order=90,
)
def run(ctx: AnalysisContext) -> AnalysisResult:
    result = AnalysisResult("pursuit")
    rec_rows, frame_rows, curves = [], [], {}
    for s in ctx.sources:
        if not is_pursuit(s.model):
            result.notes.append(f"{s.label}: not a pursuit network, skipped")
            continue
        errors, frame = pursuit_metrics(s.model, ctx.x, ctx.settings.probe_size)
        curves[s.label] = errors
        for t in range(errors.shape[0]):
            per_layer = {f"layer_{j + 1}": float(e) for j, e in enumerate(errors[t])}
            rec_rows.append({"model": s.label, "iteration": t, **per_layer, "mean": float(errors[t].mean())})
        stack = s.model.pursuit
        frame_rows.append({"model": s.label, "method": stack.method, "n_iters": stack.n_iters, **frame})
    if not curves:
        raise ValueError(
            "pursuit metrics need a pursuit network; none of the models is one "
            "(e.g. edlnet train with model=deep_pursuit_residual)"
        )
    n_layers = max(e.shape[1] for e in curves.values())
    result.tables.append(
        Table(
            name="pursuit_reconstruction",
            title="Reconstruction error per layer per iteration (deep pursuit, Figure 8)",
            columns=["model", "iteration", *[f"layer_{j + 1}" for j in range(n_layers)], "mean"],
            rows=rec_rows,
            notes=[
                "‖v_j − B̃_j w_j‖₂ / ‖v_j‖₂ averaged over the images (eval mode), after each "
                "iteration; iteration 0 is the feed-forward pass."
            ],
            meta={"n_images": int(ctx.x.shape[0])},
        )
    )
    result.tables.append(
        Table(
            name="pursuit_frame",
            title="Deep frame potential and mutual coherence of the global dictionary (Figures 9–10)",
            columns=[
                "model",
                "method",
                "n_iters",
                "atoms",
                "signal_dim",
                "frame_potential",
                "frame_potential_mean",
                "frame_potential_bound",
                "mutual_coherence",
                "coherence_welch_bound",
            ],
            rows=frame_rows,
            notes=[
                f"Global dictionary (Eq. 16, eval-mode BatchNorm scale folded in) for "
                f"{ctx.settings.probe_size}×{ctx.settings.probe_size} inputs, columns normalized "
                "to unit ℓ2; frame_potential = ‖G‖_F², frame_potential_mean = ‖G‖_F²/n², "
                "mutual_coherence = max off-diagonal |G|.",
                "Bounds: frame potential ≥ max(n, n²/m); coherence ≥ √((n−m)/(m(n−1))) (Welch).",
            ],
            meta={"probe_size": ctx.settings.probe_size},
        )
    )
    result.figures["pursuit"] = _figure(curves, frame_rows)
    result.captions["pursuit"] = (
        "Figures 8–10: reconstruction error per layer per iteration, "
        "deep frame potential and mutual coherence"
    )
    return result


def _figure(curves: dict[str, torch.Tensor], frame_rows: list[dict]):
    n = len(curves)
    fig, axes = new_figure(1, n + 2, size=(3.4, 3.0))
    for ax, (label, errors) in zip(axes[0], curves.items()):
        palette = depth_colors(errors.shape[1])
        for j in range(errors.shape[1]):
            ax.plot(
                range(errors.shape[0]),
                errors[:, j].numpy(),
                color=palette[j],
                marker="o",
                markersize=2,
                linewidth=1,
                label=f"layer {j + 1}",
            )
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("iteration")
        ax.set_ylabel("relative reconstruction error")
    axes[0][0].legend(fontsize=5)
    labels = [r["model"] for r in frame_rows]
    for ax, key, title in (
        (axes[0][n], "frame_potential_mean", "deep frame potential ‖G‖²/n²"),
        (axes[0][n + 1], "mutual_coherence", "mutual coherence"),
    ):
        ax.bar(range(len(frame_rows)), [r[key] for r in frame_rows])
        ax.set_xticks(range(len(frame_rows)), labels, rotation=60, fontsize=6, ha="right")
        ax.set_title(title, fontsize=8)
    return fig
