"""Embedding difference per layer between clean and attacked inputs (Figure 5 of the Elastic
DL paper), and the hidden-embedding picture of one image through the layers (Figure 4).

Each model is attacked by its own PGD (white-box); layer 0 is the input image itself, so the
first point is ‖x − x'‖/‖x‖ and the curve shows how each layer shrinks or amplifies it. The
hidden embeddings z_l of a model are, in forward order, the outputs of its dictionary layers and
convolutions (ResNets, EDLNets, partly converted ones), or the codes of every pursuit layer
(pursuit networks).
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers.dict_conv import DictConv2d
from ..models.capture import capture_layers
from ..tables import Table
from .base import AnalysisContext, AnalysisResult, register_analysis
from .plotting import image_hwc, new_figure
from .sources import ModelSource


@torch.no_grad()
def hidden_embeddings(model: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """``[(layer name, z_l)]`` for images ``x`` in [0, 1], in forward order."""
    pursuit = getattr(model, "pursuit", None)
    if pursuit is not None and hasattr(pursuit, "solve"):
        codes, _ = pursuit.solve(model.normalize(x))
        return [(f"pursuit.layers.{j}", z) for j, z in enumerate(codes)]
    order = {m: i for i, m in enumerate(model.modules())}
    with capture_layers(model, kinds=(DictConv2d, nn.Conv2d)) as records:
        model(x)
    if not records:
        raise ValueError(
            f"{type(model).__name__} has no convolution or dictionary layers whose outputs could be compared"
        )
    modules = dict(model.named_modules())
    names = sorted(records, key=lambda n: order[modules[n]])
    return [(n, records[n]["output"]) for n in names]


def relative_difference(z: torch.Tensor, z_adv: torch.Tensor) -> torch.Tensor:
    """Per-example ‖z − z'‖₂ / ‖z‖₂ (Figure 5's embedding difference)."""
    num = (z - z_adv).flatten(1).norm(dim=1)
    return num / z.flatten(1).norm(dim=1).clamp_min(1e-30)


def embedding_differences(
    model: torch.nn.Module, x: torch.Tensor, x_adv: torch.Tensor
) -> list[tuple[str, torch.Tensor]]:
    """``[(layer, per-example ‖z_l − z'_l‖/‖z_l‖)]`` with the input as layer ``"input"``."""
    clean = hidden_embeddings(model, x)
    attacked = dict(hidden_embeddings(model, x_adv))
    out = [("input", relative_difference(x, x_adv))]
    out += [(name, relative_difference(z, attacked[name])) for name, z in clean]
    return out


@register_analysis(
    "embeddings",
    help="embedding difference per layer (Fig. 5) and the hidden-embedding picture of one image (Fig. 4)",
    order=20,
)
def run(ctx: AnalysisContext) -> AnalysisResult:
    result = AnalysisResult("embeddings")
    rows, curves = [], {}
    for source in ctx.sources:
        diffs = embedding_differences(source.model, ctx.x, ctx.attacked(source).x_adv)
        curves[source.label] = diffs
        for index, (name, d) in enumerate(diffs):
            rows.append(
                {
                    "model": source.label,
                    "index": index,
                    "layer": name,
                    "mean": float(d.mean()),
                    "std": float(d.std(unbiased=False)),
                    "max": float(d.max()),
                }
            )
    result.tables.append(
        Table(
            name="embedding_difference",
            title="Embedding difference per layer (Figure 5)",
            columns=["model", "index", "layer", "mean", "std", "max"],
            rows=rows,
            notes=[
                "‖z_l − z'_l‖₂ / ‖z_l‖₂ per image (z: clean, z': attacked by PGD on the same "
                "model), then mean, population std and max over the images.",
                "Index 0 is the input image; then every convolution / dictionary layer output "
                "(pursuit networks: every layer's code) in forward order.",
            ],
            meta=ctx.attack_meta(),
        )
    )
    result.figures["embedding_difference"] = _difference_figure(curves)
    picture, table = embedding_picture(ctx)
    result.figures["embedding_picture"] = picture
    result.captions["embedding_difference"] = (
        "Figure 5: ‖z − z'‖/‖z‖ per layer, clean vs attacked (band: ± std over images)"
    )
    result.captions["embedding_picture"] = (
        "Figure 4: one image through the layers, clean, attacked and their difference, per model"
    )
    result.tables.append(table)
    return result


def _difference_figure(curves: dict[str, list[tuple[str, torch.Tensor]]]):
    fig, axes = new_figure(1, 1, size=(6.0, 3.6))
    ax = axes[0][0]
    for label, diffs in curves.items():
        mean = torch.stack([d.mean() for _, d in diffs]).numpy()
        std = torch.stack([d.std(unbiased=False) for _, d in diffs]).numpy()
        idx = range(len(diffs))
        ax.plot(idx, mean, marker="o", markersize=3, label=label)
        ax.fill_between(idx, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("layer (0 = input)")
    ax.set_ylabel("‖z − z'‖ / ‖z‖")
    ax.set_title("Embedding difference, clean vs attacked")
    ax.legend(fontsize=8)
    return fig


def pick_image(ctx: AnalysisContext) -> int:
    """The first image every model classifies correctly when clean (else image 0)."""
    ok = torch.ones_like(ctx.y, dtype=torch.bool)
    with torch.no_grad():
        for s in ctx.sources:
            ok &= s.model(ctx.x).argmax(1) == ctx.y
    hits = ok.nonzero().flatten()
    return int(hits[0]) if len(hits) else 0


def _layers_to_show(n: int, k: int) -> list[int]:
    """``k`` layer indices spread evenly over ``n`` layers (always the first and the last)."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def embedding_picture(ctx: AnalysisContext):
    """Figure 4: for one image, per model three rows — clean, attacked and |clean − attacked|
    — of the input and the channel-mean |z_l| of evenly spaced layers."""
    i = pick_image(ctx)
    x, name_of = ctx.x[i : i + 1], ctx.class_names
    per_model: list[tuple[ModelSource, list, list, int, int]] = []
    rows = []
    for s in ctx.sources:
        x_adv = ctx.attacked(s).x_adv[i : i + 1]
        clean, attacked = hidden_embeddings(s.model, x), dict(hidden_embeddings(s.model, x_adv))
        with torch.no_grad():
            p_clean, p_adv = int(s.model(x).argmax()), int(s.model(x_adv).argmax())
        show = _layers_to_show(len(clean), ctx.settings.max_picture_layers)
        picked = [(clean[j][0], clean[j][1], attacked[clean[j][0]]) for j in show]
        per_model.append((s, picked, [x, x_adv], p_clean, p_adv))
        for name, z, z_adv in picked:
            rows.append(
                {
                    "model": s.label,
                    "image": i,
                    "label": name_of[int(ctx.y[i])],
                    "clean_prediction": name_of[p_clean],
                    "attacked_prediction": name_of[p_adv],
                    "layer": name,
                    "relative_difference": float(relative_difference(z, z_adv)[0]),
                }
            )
    n_cols = 1 + max(len(p[1]) for p in per_model)
    fig, axes = new_figure(3 * len(per_model), n_cols, size=(1.6, 1.6))
    for m, (s, picked, (xc, xa), p_clean, p_adv) in enumerate(per_model):
        top = 3 * m
        axes[top][0].imshow(image_hwc(xc[0]))
        axes[top][0].set_title(f"clean: {name_of[p_clean]}", fontsize=7)
        axes[top + 1][0].imshow(image_hwc(xa[0]))
        axes[top + 1][0].set_title(f"attacked: {name_of[p_adv]}", fontsize=7)
        diff = (xa[0] - xc[0]).abs().mean(0)
        axes[top + 2][0].imshow(diff.numpy(), cmap="magma")
        axes[top + 2][0].set_title("|x − x'|", fontsize=7)
        axes[top][0].set_ylabel(s.label, fontsize=7)
        for c, (name, z, z_adv) in enumerate(picked, start=1):
            a, b = z[0].abs().mean(0), z_adv[0].abs().mean(0)
            vmax = float(torch.maximum(a.max(), b.max()))
            for r, img in enumerate((a, b, (a - b).abs())):
                axes[top + r][c].imshow(img.numpy(), cmap="viridis", vmin=0, vmax=vmax)
            axes[top][c].set_title(name, fontsize=6)
        for r in range(3):
            for c in range(len(picked) + 1, n_cols):
                axes[top + r][c].set_visible(False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"Hidden embeddings of test image {i} (true: {name_of[int(ctx.y[i])]}); "
        "rows per model: clean, attacked, |difference| of channel-mean |z|",
        fontsize=8,
    )
    table = Table(
        name="embedding_picture",
        title="Hidden-embedding picture of one image (Figure 4)",
        columns=[
            "model",
            "image",
            "label",
            "clean_prediction",
            "attacked_prediction",
            "layer",
            "relative_difference",
        ],
        rows=rows,
        notes=[
            "The image is the first test image every model classifies correctly when clean.",
            "The picture shows the channel mean of |z_l| (one colour scale per model and "
            "layer, shared by the clean and the attacked row).",
        ],
        meta=ctx.attack_meta(),
    )
    return fig, table
