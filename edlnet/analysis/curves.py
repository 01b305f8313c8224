"""Training curves (Figures 2 and 12–14 of the Elastic DL paper): clean and robust accuracy on
the training and the validation data over epochs, with the Vanilla→Elastic switch marked;
several runs overlay in one figure (Figure 14)."""

from __future__ import annotations

from typing import Any

from ..tables import Table
from .base import AnalysisContext, AnalysisResult, register_analysis
from .plotting import mark_switch, new_figure
from .run_files import metrics, switch_epoch

SERIES = (
    ("train_clean_acc", "train clean"),
    ("train_adv_acc", "train adversarial"),
    ("val_clean_acc", "validation clean"),
    ("val_robust_acc", "validation robust (PGD)"),
)
COLUMNS = [
    "epoch",
    "mode",
    "lr",
    "train_loss",
    "train_clean_acc",
    "train_adv_acc",
    "val_clean_acc",
    "val_robust_acc",
    "seconds",
]


def curves_table(records: list[dict[str, Any]], label: str) -> Table:
    """One row per epoch, the numbers exactly as in metrics.jsonl."""
    rows = [{"run": label, **{c: r.get(c) for c in COLUMNS}} for r in records]
    switch = switch_epoch(records)
    return Table(
        name="training_curves",
        title=f"Training curves — {label}",
        columns=["run", *COLUMNS],
        rows=rows,
        notes=[
            f"Vanilla→Elastic switch at epoch {switch} (first Elastic epoch)."
            if switch
            else "No Vanilla→Elastic switch in this run.",
            "Validation robust accuracy is the training loop's PGD check on the "
            "held-out split (see the run's config: val_attack_steps, eps).",
        ],
        meta={"switch_epoch": switch},
    )


def curves_figure(runs: dict[str, list[dict[str, Any]]]):
    """Panels: accuracy per series (one line per run) and training loss."""
    fig, axes = new_figure(1, 3, size=(4.2, 3.2))
    clean_ax, robust_ax, loss_ax = axes[0]
    switch_labelled = False
    for label, records in runs.items():
        epochs = [r["epoch"] for r in records]
        for key, name in SERIES:
            ax = clean_ax if "clean" in key else robust_ax
            values = [r.get(key) for r in records]
            if any(v is not None for v in values):
                ax.plot(
                    epochs,
                    [float("nan") if v is None else v for v in values],
                    marker="o" if len(epochs) < 30 else None,
                    markersize=3,
                    linestyle="-" if key.startswith("val") else ":",
                    label=f"{name} — {label}" if len(runs) > 1 else name,
                )
        loss_ax.plot(epochs, [r.get("train_loss") for r in records], label=label)
        switch = switch_epoch(records)
        for ax in axes[0]:
            first = ax is clean_ax and not switch_labelled
            mark_switch(
                ax,
                None if switch is None else switch - 0.5,
                label=f"Vanilla→Elastic{'' if len(runs) == 1 else ' switch'}" if first else None,
            )
        switch_labelled = switch_labelled or switch is not None
    clean_ax.set_title("clean accuracy")
    robust_ax.set_title("robust / adversarial accuracy")
    loss_ax.set_title("training loss")
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    return fig


def from_run_folder(ctx: AnalysisContext) -> bool:
    """The target model comes from a run folder (which has the per-epoch metrics)."""
    return ctx.target.run_dir is not None


@register_analysis(
    "curves",
    help="training curves with the Vanilla->Elastic switch (Figs. 2, 12-14)",
    applies=from_run_folder,
    needs="a run folder with metrics.jsonl (not a bare checkpoint)",
    order=70,
)
def run(ctx: AnalysisContext) -> AnalysisResult:
    result = AnalysisResult("curves")
    runs: dict[str, list[dict[str, Any]]] = {}
    for s in ctx.sources:
        if s.run_dir is None:
            if s is ctx.target:
                raise ValueError(
                    f"curves need a run folder with metrics.jsonl; {s.checkpoint} "
                    "is a bare checkpoint (pass the run folder instead)"
                )
            result.notes.append(f"{s.label}: not from a run folder, no curves")
            continue
        runs[s.label] = metrics(s.run_dir)
        table = curves_table(runs[s.label], s.label)
        if s is not ctx.target:
            table.name = f"training_curves_{len(runs) - 1}"
        result.tables.append(table)
    result.figures["training_curves"] = curves_figure(runs)
    result.captions["training_curves"] = (
        "Figures 2, 12–14: clean and robust accuracy over epochs, Vanilla→Elastic switch dashed"
    )
    return result
