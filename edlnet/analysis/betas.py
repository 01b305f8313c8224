"""β of every dictionary layer: over the epochs (from the run's metrics.jsonl) and at the end
(from the checkpoint). β = 1 is Vanilla DL (ℓ2 fidelity), β = 0 Robust DL (ℓ1 fidelity)."""

from __future__ import annotations

from typing import Any

from ..layers.dict_conv import dict_layers
from ..tables import Table
from .base import (
    NEEDS_DICTIONARY_LAYERS,
    AnalysisContext,
    AnalysisResult,
    has_dictionary_layers,
    register_analysis,
)
from .layer_ops import learned_beta
from .plotting import depth_colors, mark_switch, new_figure
from .run_files import metrics, switch_epoch


def final_betas(model) -> list[dict[str, Any]]:
    """Per layer: its mode, the β RISTA uses now (1/0 in vanilla/robust mode) and the learned
    elastic β (sigmoid of the parameter, which the Vanilla stage leaves at its initial value)."""
    return [
        {"layer": name, "mode": m.mode, "beta": m.beta_value(), "learned_beta": learned_beta(m)}
        for name, m in dict_layers(model)
    ]


def epoch_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Layer names and one row per epoch with each layer's β as logged by the training loop."""
    layers: list[str] = []
    for r in records:
        for name in r.get("betas") or {}:
            if name not in layers:
                layers.append(name)
    rows = [
        {"epoch": r["epoch"], "mode": r.get("mode"), **{n: (r.get("betas") or {}).get(n) for n in layers}}
        for r in records
    ]
    return layers, rows


def betas_figure(
    layers: list[str], rows: list[dict[str, Any]], final: list[dict[str, Any]], switch: int | None, label: str
):
    fig, axes = new_figure(1, 2, size=(5.0, 3.4))
    over, end = axes[0]
    palette = depth_colors(len(layers))
    for color, name in zip(palette, layers):
        over.plot(
            [r["epoch"] for r in rows],
            [r[name] for r in rows],
            color=color,
            marker="o" if len(rows) < 30 else None,
            markersize=3,
            linewidth=1,
        )
    mark_switch(over, None if switch is None else switch - 0.5)
    over.set_xlabel("epoch")
    over.set_ylabel("β")
    over.set_title("β per layer over epochs" if rows else "no per-epoch β (not a run folder)")
    if switch is not None:
        over.legend(fontsize=7)
    names = [f["layer"] for f in final]
    end.bar(range(len(final)), [f["beta"] for f in final], color=depth_colors(len(final)))
    end.set_xticks(range(len(final)), names, rotation=90, fontsize=6)
    end.set_ylim(0, 1.05)
    end.set_title("β at the end (checkpoint)")
    fig.suptitle(f"Elastic balance β — {label}")
    return fig


@register_analysis(
    "betas",
    help="beta per layer over epochs and at the end",
    applies=has_dictionary_layers,
    needs=NEEDS_DICTIONARY_LAYERS,
    order=50,
)
def run(ctx: AnalysisContext) -> AnalysisResult:
    result = AnalysisResult("betas")
    s = ctx.target
    final = final_betas(s.model)
    if not final:
        raise ValueError("β needs dictionary layers; the model has none")
    records = metrics(s.run_dir) if s.run_dir is not None else []
    layers, rows = epoch_rows(records)
    switch = switch_epoch(records)
    result.tables.append(
        Table(
            name="betas_final",
            title=f"β per layer at the end — {s.label}",
            columns=["layer", "mode", "beta", "learned_beta"],
            rows=final,
            notes=[
                "beta: the β the layer uses now (1 in Vanilla mode, 0 in Robust mode); "
                "learned_beta: sigmoid of the layer's β parameter, read from the checkpoint "
                f"{s.checkpoint}."
            ],
        )
    )
    if rows:
        result.tables.append(
            Table(
                name="betas_epochs",
                title=f"β per layer over epochs — {s.label}",
                columns=["epoch", "mode", *layers],
                rows=rows,
                notes=["As logged in metrics.jsonl at the end of every epoch."],
                meta={"switch_epoch": switch},
            )
        )
    else:
        result.notes.append("no metrics.jsonl: only the final β is shown")
    result.figures["betas"] = betas_figure(layers, rows, final, switch, s.label)
    result.captions["betas"] = "β per layer over epochs (dashed: Vanilla→Elastic) and at the end"
    return result
