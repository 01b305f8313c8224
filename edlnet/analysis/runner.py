"""``analyze``: load the models and images once, run the requested analyses and write their
PNGs and tables into ``<run>/analysis/<analysis>/`` with an ``index.json`` for the report."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ..records import environment, timestamp, write_json
from ..tables import write_table
from .base import ANALYSES, AnalysisContext, AnalysisResult, Settings, analysis_names
from .plotting import save_figure
from .run_files import ANALYSIS_DIR, INDEX, analysis_index
from .sources import load_source, sample_images, unique_labels


def default_out_dir(target: Path, source_run: Path | None, checkpoint: Path) -> Path:
    """``RUN/analysis`` for run folders and checkpoints inside one, else ``CKPT/analysis``."""
    return (source_run if source_run is not None else checkpoint) / ANALYSIS_DIR


def build_context(
    target: str | Path,
    compare: Sequence[str | Path] = (),
    *,
    settings: Settings | None = None,
    which: str = "best",
    out_dir: str | Path | None = None,
    dataset: str | None = None,
    device: str = "cpu",
) -> AnalysisContext:
    """Load the target and the comparison models and the first ``n_images`` test images."""
    settings = settings or Settings()
    main = load_source(target, which, device)
    others = [load_source(c, which, device) for c in compare]
    unique_labels([main, *others])
    x, y, names = sample_images(settings.n_images, main.run_dir, dataset, device=device)
    out = Path(out_dir) if out_dir else default_out_dir(Path(target), main.run_dir, main.checkpoint)
    return AnalysisContext(main, others, x, y, names, settings, out)


def resolve_names(what: Sequence[str], ctx: AnalysisContext) -> tuple[list[str], list[str]]:
    """The analyses to run and the ones ``all`` skipped as not applicable."""
    known = analysis_names()
    unknown = [w for w in what if w != "all" and w not in known]
    if unknown:
        raise ValueError(f"unknown analysis {', '.join(unknown)}; choose from {', '.join(known)} or all")
    if "all" not in what:
        names = list(dict.fromkeys(what))
        # Refuse before anything is computed or written, naming what is missing.
        for name in names:
            analysis = ANALYSES.get(name)
            if not analysis.applies(ctx):
                raise ValueError(f"{name} does not apply to {ctx.target.label}: it needs {analysis.needs}")
        return names, []
    names = [n for n in known if ANALYSES.get(n).applies(ctx)]
    return names, [n for n in known if n not in names]


def write_result(result: AnalysisResult, folder: Path) -> dict:
    """Save the result's figures and tables under ``folder``; returns its index entry."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = [save_figure(fig, folder / f"{stem}.png").name for stem, fig in result.figures.items()]
    captions = {f"{stem}.png": text for stem, text in result.captions.items()}
    tables = [write_table(t, folder)[0].name for t in result.tables]
    return {
        "folder": folder.name,
        "figures": figures,
        "captions": captions,
        "tables": tables,
        "notes": result.notes,
    }


def analyze(
    ctx: AnalysisContext, what: Sequence[str] = ("all",), log: bool = True
) -> dict[str, AnalysisResult]:
    """Run the analyses named in ``what`` and write them under ``ctx.out_dir``."""
    names, skipped = resolve_names(what, ctx)
    index = analysis_index(ctx.out_dir)
    index.setdefault("analyses", {})
    results = {}
    for name in names:
        if log:
            print(f"analyze: {name} ...", file=sys.stderr, flush=True)
        analysis = ANALYSES.get(name)
        torch.manual_seed(ctx.settings.seed)
        result = analysis.run(ctx)
        results[name] = result
        entry = write_result(result, ctx.out_dir / result.name)
        entry.update(
            {
                "what": name,
                "help": analysis.help,
                "written": timestamp(),
                "target": ctx.target.label,
                "checkpoint": str(ctx.target.checkpoint),
                "compare": [s.label for s in ctx.compare],
                "settings": ctx.settings.to_dict(),
            }
        )
        index["analyses"][name] = entry
    index.update({"environment": environment(), "skipped": skipped})
    write_json(ctx.out_dir / INDEX, index)
    if log and skipped:
        print(f"analyze: not applicable to this model: {', '.join(skipped)}", file=sys.stderr)
    return results
