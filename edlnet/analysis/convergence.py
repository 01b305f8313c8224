"""RISTA convergence per layer (Figure 6 of the Elastic DL paper): the Eq. 12 objective and
its three terms over the unrolled steps, for clean and for attacked inputs.

Each dictionary layer is fed the input it receives inside the network (captured during a
forward pass of the clean or the attacked images) and re-solved with ``return_terms``. With
``n_steps`` the layers are re-solved with that many steps instead of their own (the network
forward that produces the inputs still uses the layers' own settings), to show where the
iteration is heading beyond the unrolled depth.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers.dict_conv import dict_layers
from ..layers.rista import RistaTerms
from ..models.capture import capture_layers
from ..tables import Table
from .base import (
    NEEDS_DICTIONARY_LAYERS,
    AnalysisContext,
    AnalysisResult,
    has_dictionary_layers,
    register_analysis,
)
from .layer_ops import configured
from .plotting import add_depth_colorbar, depth_colors, new_figure

TERMS = (
    ("total", "Eq. 12 objective"),
    ("residual_l2_sq", "‖x − Â*(z)‖²"),
    ("residual_l1", "‖x − Â*(z)‖₁"),
    ("code_l1", "‖z‖₁"),
)


@torch.no_grad()
def layer_terms(model: nn.Module, x: torch.Tensor, n_steps: int | None = None) -> dict[str, RistaTerms]:
    """Per dictionary layer, the :class:`RistaTerms` (steps + 1, N) of its own input."""
    layers = dict_layers(model)
    if not layers:
        raise ValueError(
            "convergence needs dictionary layers; the model has none (train one "
            "with dl=vanilla|elastic, or convert it with edlnet.convert)"
        )
    with capture_layers(model) as records:
        model(x)
    out: dict[str, RistaTerms] = {}
    for name, layer in layers:
        options = {} if n_steps is None else {"n_steps": n_steps}
        with configured([layer], **options):
            _, terms = layer.solve(records[name]["input"], return_terms=True)
        out[name] = terms
    return out


def convergence_table(terms_by_input: dict[str, dict[str, RistaTerms]], label: str) -> list[dict]:
    """Rows (model, layer, input, step, batch means of every term)."""
    rows = []
    for which, by_layer in terms_by_input.items():
        for name, terms in by_layer.items():
            for step in range(terms.total.shape[0]):
                row = {"model": label, "layer": name, "input": which, "step": step}
                row.update({key: float(getattr(terms, key)[step].mean()) for key, _ in TERMS})
                rows.append(row)
    return rows


@register_analysis(
    "convergence",
    help="RISTA objective and terms per step, per layer, clean and attacked (Fig. 6)",
    applies=has_dictionary_layers,
    needs=NEEDS_DICTIONARY_LAYERS,
    order=10,
)
def run(ctx: AnalysisContext) -> AnalysisResult:
    """Figure 6 for the target model (and every ``--compare`` model with dictionary layers)."""
    result = AnalysisResult("convergence")
    rows: list[dict] = []
    for i, source in enumerate(ctx.sources):
        if not dict_layers(source.model):
            result.notes.append(f"{source.label}: no dictionary layers, skipped")
            continue
        x_adv = ctx.attacked(source).x_adv
        terms = {
            "clean": layer_terms(source.model, ctx.x, ctx.settings.n_steps),
            "attacked": layer_terms(source.model, x_adv, ctx.settings.n_steps),
        }
        rows += convergence_table(terms, source.label)
        stem = f"convergence{'' if i == 0 else f'_{i}'}"
        result.figures[stem] = _figure(terms, source.label)
        result.captions[stem] = (
            f"Figure 6: RISTA objective and terms per step relative to step "
            f"0, every layer (colour = depth), clean (solid) and attacked "
            f"(dashed) — {source.label}"
        )
    if not rows:
        raise ValueError("convergence: none of the models has dictionary layers")
    result.tables.append(
        Table(
            name="convergence",
            title="RISTA convergence per layer (Figure 6)",
            columns=["model", "layer", "input", "step", "total", "residual_l2_sq", "residual_l1", "code_l1"],
            rows=rows,
            notes=[
                "Batch means of the per-example terms of the problem each layer solves, on the "
                "spectrally normalized dictionary Â = A/‖A‖₂ (λ and ε in the units of the "
                "layer input); step 0 is z₀ = A(x).",
                "total = β/2·‖x − Â*(z)‖² + (1−β)/2·‖x − Â*(z)‖₁ + λ‖z‖₁ with the layer's β "
                "(1 for Vanilla layers).",
                "input = the layer's input inside the network for the clean or the attacked "
                "images (PGD on the same model).",
            ],
            meta={**ctx.attack_meta(), "n_steps": ctx.settings.n_steps},
        )
    )
    return result


def _figure(terms: dict[str, dict[str, RistaTerms]], label: str):
    names = list(terms["clean"])
    fig, axes = new_figure(1, len(TERMS), size=(3.4, 3.0))
    palette = depth_colors(len(names))
    for ax, (key, title) in zip(axes[0], TERMS):
        for which, style in (("clean", "-"), ("attacked", "--")):
            for color, name in zip(palette, names):
                values = getattr(terms[which][name], key).mean(1)
                ax.plot(
                    range(len(values)),
                    (values / values[0].clamp_min(1e-30)).numpy(),
                    style,
                    color=color,
                    linewidth=1,
                )
        ax.set_title(title)
        ax.set_xlabel("RISTA step t")
    axes[0][0].set_ylabel("value / value at t = 0")
    axes[0][0].plot([], [], "k-", label="clean")
    axes[0][0].plot([], [], "k--", label="attacked")
    axes[0][0].legend(fontsize=8)
    add_depth_colorbar(fig, axes[0], len(names))
    fig.suptitle(f"RISTA convergence per layer — {label}")
    return fig
