"""``edlnet report``: one Markdown file (and one self-contained HTML file) gathering, for every
run given, its configuration, training curves with the Vanilla→Elastic switch, β per layer,
evaluation results (``RUN/eval/*/results.json``), the analyses written by ``edlnet analyze``
(``RUN/analysis``) and any ``edlnet bench`` tables. Every number is read from those files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..analysis.betas import betas_figure, epoch_rows
from ..analysis.curves import curves_figure
from ..analysis.plotting import new_figure, save_figure
from ..analysis.run_files import (
    ANALYSIS_DIR,
    RUN_MARKERS,
    analysis_index,
    eval_results,
    metrics,
    read_json,
    run_config,
    switch_epoch,
)
from ..bench.table7 import bench_tables
from ..records import atomic_write, timestamp
from ..tables import Table, read_table
from . import document as doc

MAX_ROWS = 40  # rows of an analysis table shown in the report; the files keep all of them
CONFIG_KEYS = (
    "model",
    "model_kwargs",
    "dl",
    "dl_layers",
    "dl_options",
    "switch_to_elastic_epoch",
    "objective",
    "eps",
    "attack_steps",
    "epochs",
    "batch_size",
    "lr",
    "dataset",
    "train_subset",
    "seed",
    "precision",
)


def is_run(path: Path) -> bool:
    return path.is_dir() and (path / "metrics.jsonl").exists()


def is_bench(path: Path) -> bool:
    return path.is_dir() and (path / "bench.json").exists()


def classify(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """Run folders and bench folders among ``paths``; a folder holding several of them (such
    as the demo's output) stands for all of them."""
    runs: list[Path] = []
    benches: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist; give run folders written by "
                "`edlnet train` or bench folders written by `edlnet bench`"
            )
        found = (
            [path]
            if is_run(path) or is_bench(path)
            else sorted(p for p in path.iterdir() if is_run(p) or is_bench(p))
            if path.is_dir()
            else []
        )
        if not found:
            raise ValueError(
                f"{path} is neither a run folder (with {' or '.join(RUN_MARKERS)}), "
                "a bench folder (with bench.json) nor a folder containing them"
            )
        for p in found:
            (runs if is_run(p) else benches).append(p)
    return runs, benches


def _cap(table: Table, source: Path) -> Table:
    if len(table.rows) <= MAX_ROWS:
        return table
    return Table(
        table.name,
        table.title,
        table.columns,
        table.rows[:MAX_ROWS],
        table.notes + [f"First {MAX_ROWS} of {len(table.rows)} rows; all of them in {source}."],
        table.meta,
    )


def _key_values(data: dict[str, Any], keys: Sequence[str] | None = None) -> doc.Grid:
    keys = [k for k in (keys or data) if k in data]
    return doc.Grid(["key", "value"], [[k, _text(data[k])] for k in keys])


def _text(v: Any) -> Any:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_text(x)}" for k, x in v.items()) or "–"
    return v


def _selected_epochs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """First, last Vanilla, first Elastic, best validation and last epoch."""
    if not records:
        return []
    picks = {records[0]["epoch"], records[-1]["epoch"]}
    switch = switch_epoch(records)
    if switch is not None:
        picks |= {switch - 1, switch}
    for key in ("val_robust_acc", "val_clean_acc"):
        scored = [r for r in records if r.get(key) is not None]
        if scored:
            picks.add(max(scored, key=lambda r: r[key])["epoch"])
    return [r for r in records if r["epoch"] in picks]


def run_section(run: Path, assets: Path) -> list[doc.Block]:
    blocks: list[doc.Block] = [doc.Heading(f"Run {run.name}", 2), doc.Paragraph(f"Folder: {run}")]
    cfg = run_config(run)
    env = read_json(run / "environment.json") or {}
    blocks += [doc.Heading("Configuration", 3), _key_values(cfg, CONFIG_KEYS)]
    if env:
        blocks.append(_key_values(env, ("git_commit", "torch", "device", "world_size", "dataset", "started")))
    records = metrics(run)
    switch = switch_epoch(records)
    blocks.append(doc.Heading("Training curves", 3))
    blocks.append(
        doc.Paragraph(
            f"Vanilla→Elastic switch at epoch {switch} (first Elastic epoch, dashed line)."
            if switch
            else "No Vanilla→Elastic switch in this run."
        )
    )
    curves_png = save_figure(curves_figure({run.name: records}), assets / f"{run.name}_curves.png")
    blocks.append(doc.Image(curves_png, f"Training curves of {run.name} (from metrics.jsonl)"))
    columns = [
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
    columns = [c for c in columns if any(c in r for r in records)]
    blocks.append(doc.Paragraph("Selected epochs (first, around the switch, best, last):"))
    selected = _selected_epochs(records)
    blocks.append(doc.Grid(columns, [[r.get(c) for c in columns] for r in selected]))
    results = read_json(run / "train_results.json")
    if results:
        blocks += [doc.Paragraph("train_results.json:"), _key_values(results)]
    blocks += _beta_blocks(run, records, switch, assets)
    blocks += _eval_blocks(run)
    blocks += _analysis_blocks(run / ANALYSIS_DIR)
    return blocks


def _beta_blocks(
    run: Path, records: list[dict[str, Any]], switch: int | None, assets: Path
) -> list[doc.Block]:
    layers, rows = epoch_rows(records)
    if not layers:
        return []
    last = records[-1]
    final = [{"layer": n, "beta": last["betas"][n], "mode": last.get("mode")} for n in layers]
    png = save_figure(betas_figure(layers, rows, final, switch, run.name), assets / f"{run.name}_betas.png")
    return [
        doc.Heading("β per layer", 3),
        doc.Image(png, "β per layer over epochs and at the last epoch (from metrics.jsonl)"),
        doc.Grid(["layer", "β at the last epoch"], [[f["layer"], f["beta"]] for f in final]),
    ]


EVAL_KEYS = (
    "suite",
    "description",
    "n_examples",
    "seed",
    "clean",
    "worst_case",
    "worst_case_rule",
    "checks_passed",
    "wall_seconds",
    "created",
)
VERDICT = {True: "passed", False: "FAILED", None: "not run"}


def _eval_blocks(run: Path) -> list[doc.Block]:
    """Each suite's results.json (written by ``edlnet eval``): headline numbers, accuracy per
    attack and corruption, worst case per budget and the gradient-masking checks."""
    suites = eval_results(run)
    if not suites:
        return [
            doc.Heading("Evaluation", 3),
            doc.Paragraph("No evaluation results (RUN/eval/*/results.json) yet."),
        ]
    blocks: list[doc.Block] = [doc.Heading("Evaluation", 3)]
    for suite, res in suites.items():
        blocks.append(doc.Heading(f"Suite {suite}", 4))
        blocks.append(doc.Paragraph(f"From {run / 'eval' / suite / 'results.json'}."))
        scalars = {k: v for k, v in res.items() if not isinstance(v, (dict, list))}
        keys = [k for k in EVAL_KEYS if k in scalars] or list(scalars)
        if keys:
            blocks.append(_key_values(scalars, keys))
        for key, title in (("attacks", "attack"), ("corruptions", "corruption")):
            values = res.get(key)
            if isinstance(values, dict) and values:
                blocks.append(doc.Grid([title, "accuracy"], [[k, _text(v)] for k, v in values.items()]))
        by_budget = res.get("worst_case_by_budget")
        if isinstance(by_budget, dict) and by_budget:
            blocks.append(
                doc.Grid(
                    ["worst case at", "accuracy", "entries counted"],
                    [
                        [k, v.get("accuracy"), len(v.get("entries", []))]
                        for k, v in by_budget.items()
                        if isinstance(v, dict)
                    ],
                )
            )
        checks = res.get("checks")
        if isinstance(checks, list) and checks:
            failed = [c for c in checks if c.get("passed") is False]
            blocks.append(
                doc.Paragraph(
                    "Gradient-masking checks: "
                    + (
                        "none failed."
                        if not failed
                        else f"{len(failed)} FAILED — the robust accuracies may be overestimates."
                    )
                )
            )
            blocks.append(
                doc.Grid(
                    ["check", "result", "detail"],
                    [
                        [
                            c.get("name"),
                            c.get("status") or VERDICT.get(c.get("passed"), c.get("passed")),
                            c.get("detail"),
                        ]
                        for c in checks
                    ],
                )
            )
    return blocks


def _analysis_blocks(folder: Path) -> list[doc.Block]:
    index = analysis_index(folder)
    entries = index.get("analyses", {})
    if not entries:
        return [
            doc.Heading("Analyses", 3),
            doc.Paragraph("No analyses yet (run `edlnet analyze RUN --what all`)."),
        ]
    blocks: list[doc.Block] = [doc.Heading("Analyses", 3)]
    for name, entry in entries.items():
        sub = folder / entry["folder"]
        blocks.append(doc.Heading(f"{name}: {entry.get('help', '')}", 4))
        who = entry.get("target", "")
        if entry.get("compare"):
            who += " compared with " + ", ".join(entry["compare"])
        blocks.append(doc.Paragraph(f"Model: {who} (written {entry.get('written', '?')})."))
        settings = entry.get("settings", {})
        if settings:
            blocks.append(doc.Paragraph("Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items())))
        captions = entry.get("captions", {})
        for png in entry.get("figures", []):
            if (sub / png).exists():
                blocks.append(doc.Image(sub / png, captions.get(png, f"{name} ({png})")))
        for table_file in entry.get("tables", []):
            if (sub / table_file).exists():
                blocks.append(_cap(read_table(sub / table_file), sub / table_file))
        if entry.get("notes"):
            blocks.append(doc.Bullets(list(entry["notes"])))
    return blocks


def comparison_section(runs: list[Path], assets: Path) -> list[doc.Block]:
    """Training curves of all runs overlaid (Figure 14) and their final numbers side by side."""
    data = {r.name: metrics(r) for r in runs}
    png = save_figure(curves_figure(data), assets / "comparison_curves.png")
    rows = []
    for r in runs:
        last = data[r.name][-1] if data[r.name] else {}
        cfg = run_config(r)
        worst = {s: v.get("worst_case") for s, v in eval_results(r).items()}
        rows.append(
            [
                r.name,
                cfg.get("model"),
                cfg.get("dl") or "plain",
                last.get("epoch"),
                last.get("val_clean_acc"),
                last.get("val_robust_acc"),
                _text(worst) if worst else None,
            ]
        )
    return [
        doc.Heading("Comparison of runs", 2),
        doc.Image(png, "Training curves of all runs (Figure 14)"),
        doc.Grid(
            ["run", "model", "dl", "epochs", "last val clean", "last val robust", "eval worst case"], rows
        ),
    ]


def bench_section(folder: Path, assets: Path) -> list[doc.Block]:
    record = read_json(folder / "bench.json") or {}
    tables = bench_tables(record)
    blocks: list[doc.Block] = [
        doc.Heading(f"Timing (Table 7): {folder.name}", 2),
        doc.Paragraph(
            f"Folder: {folder}; finished "
            f"{record.get('finished', '?')}; git "
            f"{record.get('environment', {}).get('git_commit')}."
        ),
    ]
    png = _bench_figure(record, assets / f"{folder.name}_bench.png")
    if png is not None:
        blocks.append(
            doc.Image(png, "Forward time relative to the plain ResNet, ours vs the paper's Table 7")
        )
    return blocks + tables


def _bench_figure(record: dict[str, Any], path: Path) -> Path | None:
    rows = [r for r in record.get("rows", []) if r.get("forward_ratio") is not None]
    if not rows:
        return None
    fig, axes = new_figure(1, 1, size=(5.5, 3.5))
    ax = axes[0][0]
    base = [r for r in rows if r["layers"] == 0]
    for mode, color in (("vanilla", "tab:blue"), ("elastic", "tab:orange")):
        mine = base + [r for r in rows if r["mode"] == mode]
        ax.plot(
            [r["layers"] for r in mine],
            [r["forward_ratio"] for r in mine],
            "-o",
            color=color,
            label=f"{mode} (ours)",
        )
        paper = [r for r in mine if r.get("paper_ratio") is not None]
        ax.plot(
            [r["layers"] for r in paper],
            [r["paper_ratio"] for r in paper],
            "--s",
            color=color,
            alpha=0.6,
            label=f"{mode} (paper)",
        )
    ax.set_xlabel("convolutions replaced")
    ax.set_ylabel("forward time / ResNet-18")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def build_report(paths: Sequence[str | Path], out: str | Path | None = None) -> tuple[Path, Path]:
    """Write the Markdown report and its HTML twin; returns (markdown path, html path)."""
    runs, benches = classify(paths)
    if out is None:
        out = (runs[0] / "report.md") if len(runs) == 1 and not benches else Path("report.md")
    out = Path(out)
    if out.suffix.lower() != ".md":
        raise ValueError(f"--out must name a Markdown file ending in .md, got {out}")
    assets = out.parent / f"{out.stem}_files"
    blocks: list[doc.Block] = [
        doc.Heading("EDLNet report", 1),
        doc.Paragraph(
            f"Generated {timestamp()} from the files of "
            f"{len(runs)} run(s) and {len(benches)} timing benchmark(s); every number "
            "below is read from those files."
        ),
        doc.Bullets([str(p) for p in runs + benches]),
    ]
    for run in runs:
        blocks += run_section(run, assets)
    if len(runs) > 1:
        blocks += comparison_section(runs, assets)
    for bench in benches:
        blocks += bench_section(bench, assets)
    md_text = doc.to_markdown(blocks, out)
    html_text = doc.to_html(blocks, "EDLNet report")
    html_path = out.with_suffix(".html")
    atomic_write(out, lambda tmp: Path(tmp).write_text(md_text))
    atomic_write(html_path, lambda tmp: Path(tmp).write_text(html_text))
    return out, html_path
