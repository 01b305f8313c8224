"""Noise recovery (Table 12 of the Elastic DL paper): how well the first dictionary layer's
reconstruction separates the noise from the image.

Definition used here. Let D be the model's first dictionary layer and u(x) its input inside
the network for images x (for a converted stem, u(x) = (x − μ)/σ, the model's normalization).
D's reconstruction of its input is R(u) = Â*(ẑ(u)), where ẑ(u) is the code of the problem
D's RISTA solves (the layer output divided by ‖A‖₂, bias-free) and Â = A/‖A‖₂ its dictionary.
For a noisy image x' = x + ε (ε after clipping to [0, 1]) the recovered noise is

    ε̂ = σ ⊙ (R(u(x')) − R(u(x)))         (in pixel units; σ = the normalization std)

when D's input is the normalized image, and R(u(x')) − R(u(x)) compared with u(x') − u(x) (in
the units of D's input) otherwise. The table reports ‖ε − ε̂‖ in ℓ1, ℓ2 and ℓ∞ per image
(mean ± std over images) for random noise, noise transferred from every ``--compare`` model
(PGD on that model) and adaptive noise (PGD on the analysed model itself).
"""

from __future__ import annotations

import torch
from torch import nn

from ..attacks import parse_eps
from ..layers.dict_conv import DictConv2d, dict_layers
from ..models.capture import capture_layers
from ..tables import Table
from .base import (
    NEEDS_DICTIONARY_LAYERS,
    AnalysisContext,
    AnalysisResult,
    has_dictionary_layers,
    register_analysis,
)
from .layer_ops import reconstruct
from .noise import add_noise
from .plotting import image_hwc, new_figure

# The paper's Table 12, "Reconstruction Error", as printed in Zhong et al., "Boosting Adversarial
# Robustness and Generalization with Structural Prior" (the Elastic DL paper): mean ± std of the
# ℓ1, ℓ2, ℓ∞ norms of ε − ε̂; kept beside our measurements, never used as inputs.
TABLE12_SOURCE = "Elastic DL paper, Table 12 (reconstruction error of the recovered noise)"
TABLE12 = {
    "random": ((1294.75, 406.78), (26.09, 7.04), (0.901, 0.10)),
    "resnet": ((131.51, 10.53), (2.93, 0.22), (0.163, 0.01)),
    "vanilla": ((129.07, 13.22), (2.85, 0.26), (0.157, 0.01)),
    "elastic": ((122.62, 9.92), (2.69, 0.22), (0.149, 0.01)),
}


def first_dictionary_layer(model: nn.Module) -> tuple[str, DictConv2d]:
    layers = dict_layers(model)
    if not layers:
        raise ValueError(
            "noise recovery needs a dictionary layer; the model has none (train one with dl=vanilla|elastic)"
        )
    return layers[0]


@torch.no_grad()
def recovered_noise(
    model: nn.Module, x: torch.Tensor, x_noisy: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(input noise, recovered noise ε̂, units) as defined in the module docstring."""
    name, layer = first_dictionary_layer(model)
    inputs = []
    for images in (x, x_noisy):
        with capture_layers(model) as records:
            model(images)
        inputs.append(records[name]["input"])
    u, u_noisy = inputs
    rec = reconstruct(layer, u_noisy) - reconstruct(layer, u)
    normalize = getattr(model, "normalize", None)
    std = getattr(normalize, "std", None)
    if std is not None and torch.allclose(u, normalize(x), atol=1e-6):
        return x_noisy - x, rec * std, "pixels"
    return u_noisy - u, rec, "layer input"


def error_norms(noise: torch.Tensor, recovered: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ℓ1, ℓ2, ℓ∞ norms of ε − ε̂."""
    e = (noise - recovered).flatten(1)
    return {"l1": e.abs().sum(1), "l2": e.norm(dim=1), "linf": e.abs().amax(1)}


@register_analysis(
    "noise-recovery",
    help="recovered vs random/transferred/adaptive noise in l1/l2/linf (Table 12)",
    applies=has_dictionary_layers,
    needs=NEEDS_DICTIONARY_LAYERS,
    order=40,
)
def run(ctx: AnalysisContext) -> AnalysisResult:
    result = AnalysisResult("noise_recovery")
    model = ctx.target.model
    first_dictionary_layer(model)
    s = ctx.settings
    noisy = {f"random (±{s.eps} signs)": add_noise(ctx.x, f"sign:{parse_eps(s.eps)[1]}", s.seed)}
    for other in ctx.compare:
        noisy[f"transfer from {other.label}"] = ctx.attacked(other).x_adv
    noisy[f"adaptive ({ctx.target.label})"] = ctx.attacked(ctx.target).x_adv
    rows, shown = [], {}
    for source, x_noisy in noisy.items():
        noise, rec, units = recovered_noise(model, ctx.x, x_noisy)
        shown[source] = (x_noisy, noise, rec)
        row = {"noise": source, "units": units}
        for key, values in error_norms(noise, rec).items():
            row[f"{key}_mean"] = float(values.mean())
            row[f"{key}_std"] = float(values.std(unbiased=False))
        row["recovered_l2_ratio"] = float(
            (rec.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1).clamp_min(1e-30)).mean()
        )
        rows.append(row)
    result.tables.append(
        Table(
            name="noise_recovery",
            title=f"Noise recovery by the first dictionary layer of {ctx.target.label} (Table 12)",
            columns=[
                "noise",
                "units",
                "l1_mean",
                "l1_std",
                "l2_mean",
                "l2_std",
                "linf_mean",
                "linf_std",
                "recovered_l2_ratio",
            ],
            rows=rows,
            notes=[
                "Recovered noise ε̂ = σ ⊙ (Â*(ẑ(u(x + ε))) − Â*(ẑ(u(x)))): the difference of the "
                "first dictionary layer's reconstructions of the noisy and the clean input, "
                "mapped back to pixels through the normalization std σ (see "
                "edlnet/analysis/noise_recovery.py).",
                "Columns: mean and population std over images of ‖ε − ε̂‖₁, ‖ε − ε̂‖₂, ‖ε − ε̂‖∞; "
                "recovered_l2_ratio = mean ‖ε̂‖₂/‖ε‖₂.",
                "Transferred noise is PGD on the --compare model; adaptive noise is PGD on the "
                "analysed model itself.",
            ],
            meta=ctx.attack_meta(),
        )
    )
    result.tables.append(paper_table12())
    result.figures["noise_recovery"] = _figure(ctx, shown)
    result.captions["noise_recovery"] = (
        "Table 12 / Figure 19: noise ε, the first dictionary "
        "layer's recovered noise ε̂ and ε − ε̂ for one image"
    )
    return result


def paper_table12() -> Table:
    """The paper's Table 12 as printed, for side-by-side reading (not comparable digit for
    digit: the paper does not define ε̂, the random noise or the units)."""
    rows = []
    for name, values in TABLE12.items():
        row: dict = {"noise": f"ε_{name} − ε̂"}
        for norm, (mean, std) in zip(("l1", "l2", "linf"), values):
            row[f"{norm}_mean"], row[f"{norm}_std"] = mean, std
        rows.append(row)
    return Table(
        name="noise_recovery_paper",
        title="The paper's Table 12 (as printed)",
        columns=["noise", "l1_mean", "l1_std", "l2_mean", "l2_std", "linf_mean", "linf_std"],
        rows=rows,
        notes=[
            f"{TABLE12_SOURCE}; the paper does not state how ε̂ is computed, what "
            "the random noise is, nor the units, so compare orderings, not digits."
        ],
    )


def _figure(ctx: AnalysisContext, shown: dict[str, tuple[torch.Tensor, ...]]):
    """Figure 19's reconstruction process for image 0: noisy image, ε, ε̂ and ε − ε̂."""
    fig, axes = new_figure(len(shown), 4, size=(1.9, 1.9))
    for r, (source, (x_noisy, noise, rec)) in enumerate(shown.items()):
        scale = float(noise[0].abs().max().clamp_min(1e-12))
        panels = [
            (x_noisy[0], "noisy image"),
            (0.5 + noise[0] / (2 * scale), "noise ε"),
            (0.5 + rec[0] / (2 * scale), "recovered ε̂"),
            (0.5 + (noise[0] - rec[0]) / (2 * scale), "ε − ε̂"),
        ]
        for c, (img, title) in enumerate(panels):
            axes[r][c].imshow(image_hwc(img))
            axes[r][c].set_title(title, fontsize=7)
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel(source, fontsize=6)
    fig.suptitle(
        "Noise reconstruction by the first dictionary layer (grey = 0, one colour scale per row: ±max|ε|)",
        fontsize=8,
    )
    return fig
