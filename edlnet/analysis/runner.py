"""``analyze``: load the models and images once, run the requested analyses and write their
PNGs and tables into ``<run>/analysis/<analysis>/`` with an ``index.json`` for the report."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..records import environment, timestamp, write_json
from ..tables import write_table
from . import (
    betas,
    convergence,
    curves,
    embeddings,
    influence,
    lambda_sweep,
    noise_recovery,
    perturbations,
    pursuit_metrics,
)
from .context import AnalysisContext, Settings
from .plotting import save_figure
from .result import AnalysisResult
from .run_files import ANALYSIS_DIR, INDEX, analysis_index
from .sources import load_source, sample_images, unique_labels


@dataclass(frozen=True)
class Analysis:
    run: Callable[[AnalysisContext], AnalysisResult]
    help: str
    applies: Callable[[AnalysisContext], bool]
    needs: str = ""  # what ``applies`` checks, said to the user when it fails


def _has_dict(ctx: AnalysisContext) -> bool:
    from ..layers.dict_conv import dict_layers

    return bool(dict_layers(ctx.target.model))


def _any_pursuit(ctx: AnalysisContext) -> bool:
    return any(pursuit_metrics.is_pursuit(s.model) for s in ctx.sources)


DICT = "dictionary layers in the model (train with dl=vanilla|elastic)"
ANALYSES: dict[str, Analysis] = {
    "convergence": Analysis(
        convergence.run,
        "RISTA objective and terms per step, per layer, clean and attacked (Fig. 6)",
        _has_dict,
        DICT,
    ),
    "embeddings": Analysis(
        embeddings.run,
        "embedding difference per layer (Fig. 5) and the hidden-embedding picture of one image (Fig. 4)",
        lambda ctx: True,
    ),
    "perturbations": Analysis(
        perturbations.run, "the PGD perturbation on each model (Fig. 7)", lambda ctx: True
    ),
    "noise-recovery": Analysis(
        noise_recovery.run,
        "recovered vs random/transferred/adaptive noise in l1/l2/linf (Table 12)",
        _has_dict,
        DICT,
    ),
    "betas": Analysis(betas.run, "beta per layer over epochs and at the end", _has_dict, DICT),
    "lambda-sweep": Analysis(lambda_sweep.run, "accuracy under noise vs test-time lambda", _has_dict, DICT),
    "curves": Analysis(
        curves.run,
        "training curves with the Vanilla->Elastic switch (Figs. 2, 12-14)",
        lambda ctx: ctx.target.run_dir is not None,
        "a run folder with metrics.jsonl (not a bare checkpoint)",
    ),
    "influence": Analysis(
        influence.run,
        "Theorem 4.2 influence functions and finite-difference sensitivity vs n_steps",
        _has_dict,
        DICT,
    ),
    "pursuit": Analysis(
        pursuit_metrics.run,
        "deep pursuit reconstruction error per iteration, frame potential, mutual coherence (Figs. 8-10)",
        _any_pursuit,
        "a pursuit network among the models (e.g. model=deep_pursuit_residual)",
    ),
}


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
    unknown = [w for w in what if w != "all" and w not in ANALYSES]
    if unknown:
        raise ValueError(f"unknown analysis {', '.join(unknown)}; choose from {', '.join(ANALYSES)} or all")
    if "all" not in what:
        names = list(dict.fromkeys(what))
        # Refuse before anything is computed or written, naming what is missing.
        for name in names:
            if not ANALYSES[name].applies(ctx):
                raise ValueError(
                    f"{name} does not apply to {ctx.target.label}: it needs {ANALYSES[name].needs}"
                )
        return names, []
    names = [n for n, a in ANALYSES.items() if a.applies(ctx)]
    return names, [n for n in ANALYSES if n not in names]


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
        torch.manual_seed(ctx.settings.seed)
        result = ANALYSES[name].run(ctx)
        results[name] = result
        entry = write_result(result, ctx.out_dir / result.name)
        entry.update(
            {
                "what": name,
                "help": ANALYSES[name].help,
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
