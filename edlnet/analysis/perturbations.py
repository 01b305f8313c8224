"""Attack behaviour (Figure 7 of the Elastic DL paper): the perturbation PGD puts on the same
images for each model, with statistics that say whether it is spread out or made of outlying
values."""

from __future__ import annotations

import torch

from ..attacks import parse_eps
from ..tables import Table
from .base import AnalysisContext, AnalysisResult, register_analysis
from .plotting import image_hwc, new_figure

N_SHOW = 4  # images pictured per model


def perturbation_stats(delta: torch.Tensor, eps: float) -> dict[str, float]:
    """Statistics of perturbations δ (N, C, H, W) under an ℓ∞ budget ``eps``: mean per-image
    ℓ1/ℓ2/ℓ∞ norms, the fraction of coordinates at the budget (|δ| ≥ 0.99·eps), and the excess
    kurtosis of all coordinates (large: a few outlying values; −2: every coordinate at ±eps)."""
    flat = delta.flatten(1)
    values = flat.flatten()
    centred = values - values.mean()
    var = centred.pow(2).mean()
    kurtosis = float(centred.pow(4).mean() / var.pow(2).clamp_min(1e-30) - 3) if var > 0 else 0.0
    return {
        "l1": float(flat.abs().sum(1).mean()),
        "l2": float(flat.norm(dim=1).mean()),
        "linf": float(flat.abs().amax(1).mean()),
        "at_budget": float((values.abs() >= 0.99 * eps).float().mean()),
        "excess_kurtosis": kurtosis,
    }


@register_analysis("perturbations", help="the PGD perturbation on each model (Fig. 7)", order=30)
def run(ctx: AnalysisContext) -> AnalysisResult:
    result = AnalysisResult("perturbations")
    eps = parse_eps(ctx.settings.eps)[1]
    rows, deltas = [], {}
    for s in ctx.sources:
        attack = ctx.attacked(s)
        delta = attack.x_adv - ctx.x
        deltas[s.label] = delta
        rows.append({"model": s.label, "robust_accuracy": attack.accuracy, **perturbation_stats(delta, eps)})
    result.tables.append(
        Table(
            name="perturbations",
            title="Attack perturbations per model (Figure 7)",
            columns=["model", "robust_accuracy", "l1", "l2", "linf", "at_budget", "excess_kurtosis"],
            rows=rows,
            notes=[
                "δ = x_adv − x in pixel units, PGD on each model itself; l1/l2/linf are means "
                "over images of the per-image norms.",
                "at_budget: fraction of coordinates with |δ| ≥ 0.99·ε; excess_kurtosis of all "
                "coordinates of δ (heavy tails = outlying values).",
            ],
            meta=ctx.attack_meta(),
        )
    )
    result.figures["perturbations"] = _figure(ctx, deltas, eps)
    result.captions["perturbations"] = (
        "Figure 7: PGD perturbations on each model (grey = 0, saturated = ±ε) and the histogram of δ/ε"
    )
    return result


def _figure(ctx: AnalysisContext, deltas: dict[str, torch.Tensor], eps: float):
    n = min(N_SHOW, ctx.x.shape[0])
    fig, axes = new_figure(len(deltas) + 1, n + 1, size=(1.8, 1.8))
    for c in range(n):
        axes[0][c].imshow(image_hwc(ctx.x[c]))
        axes[0][c].set_title(ctx.class_names[int(ctx.y[c])], fontsize=7)
    axes[0][n].set_visible(False)
    for r, (label, delta) in enumerate(deltas.items(), start=1):
        for c in range(n):
            # Mid-grey is zero; full colour is ±eps in that channel.
            axes[r][c].imshow(image_hwc(0.5 + delta[c] / (2 * eps)))
        axes[r][0].set_ylabel(label, fontsize=7)
        axes[r][n].hist((delta / eps).flatten().numpy(), bins=41, range=(-1.05, 1.05), color="tab:blue")
        axes[r][n].set_title("δ/ε histogram", fontsize=7)
    for ax in axes[:, :n].flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "Clean images (top) and the PGD perturbation on each model (grey = 0, saturated = ±ε)", fontsize=8
    )
    return fig
