"""Accuracy under noise as the sparsity weight λ of every dictionary layer is swept at test time
(SDNet-style robust inference; Figure 11 and Table 1 of the Elastic DL paper): a larger λ makes
the codes sparser and can denoise, at some cost on clean images."""

from __future__ import annotations

import torch
from torch import nn

from ..layers.dict_conv import dict_layers
from ..tables import Table
from .base import (
    NEEDS_DICTIONARY_LAYERS,
    AnalysisContext,
    AnalysisResult,
    has_dictionary_layers,
    register_analysis,
)
from .layer_ops import configured
from .noise import add_noise
from .plotting import new_figure

LINESTYLES = ("-", "--", ":", "-.")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    lams: tuple[float, ...],
    noises: tuple[str, ...],
    seed: int = 0,
) -> list[dict]:
    """Rows {lam, <noise>: accuracy ...}; every layer gets the same λ, restored afterwards.
    The noisy images are drawn once, so every λ sees the same ones."""
    layers = [m for _, m in dict_layers(model)]
    if not layers:
        raise ValueError("the λ sweep needs dictionary layers; the model has none")
    noisy = {spec: add_noise(x, spec, seed) for spec in noises}
    rows = []
    for lam in lams:
        with configured(layers, lam=float(lam)):
            rows.append({"lam": float(lam), **{spec: accuracy(model, xn, y) for spec, xn in noisy.items()}})
    return rows


@register_analysis(
    "lambda-sweep",
    help="accuracy under noise vs test-time lambda",
    applies=has_dictionary_layers,
    needs=NEEDS_DICTIONARY_LAYERS,
    order=60,
)
def run(ctx: AnalysisContext) -> AnalysisResult:
    result = AnalysisResult("lambda_sweep")
    s = ctx.settings
    rows = []
    fig, axes = new_figure(1, 1, size=(5.5, 3.6))
    ax = axes[0][0]
    for source in ctx.sources:
        layers = dict_layers(source.model)
        if not layers:
            result.notes.append(f"{source.label}: no dictionary layers, skipped")
            continue
        trained = sorted({m.lam for _, m in layers})
        lams = tuple(sorted(set(s.lams) | set(trained)))
        for row in sweep(source.model, ctx.x, ctx.y, lams, s.noises, s.seed):
            rows.append({"model": source.label, "trained": row["lam"] in trained, **row})
        style = LINESTYLES[ctx.sources.index(source) % len(LINESTYLES)]
        for k, spec in enumerate(s.noises):
            # Colour = noise, line style = model.
            ax.plot(
                lams,
                [r[spec] for r in rows if r["model"] == source.label],
                style,
                color=f"C{k}",
                marker="o",
                markersize=3,
                label=f"{spec} — {source.label}" if len(ctx.sources) > 1 else spec,
            )
        for lam in trained:
            ax.axvline(lam, color="grey", linestyle=":", linewidth=1)
    if not rows:
        raise ValueError("the λ sweep needs dictionary layers; none of the models has them")
    ax.set_xlabel("λ at test time (every dictionary layer)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy under noise vs test-time λ (dotted: trained λ)")
    ax.legend(fontsize=6, ncols=2 if len(ctx.sources) > 1 else 1)
    result.figures["lambda_sweep"] = fig
    result.captions["lambda_sweep"] = "Accuracy under noise as the test-time λ is swept"
    result.tables.append(
        Table(
            name="lambda_sweep",
            title="Accuracy under noise as λ is swept at test time",
            columns=["model", "lam", "trained", *s.noises],
            rows=rows,
            notes=[
                "Accuracy on the analysed images; noises: gaussian:s adds N(0, s²), impulse:p "
                "sets a fraction p of the pixels to 0 or 1, drawn once with the seed.",
                "trained = the λ the layers were trained with.",
            ],
            meta={"n_images": int(ctx.x.shape[0]), "seed": s.seed},
        )
    )
    return result
