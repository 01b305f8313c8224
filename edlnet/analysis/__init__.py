"""The papers' analyses of a model: ``edlnet analyze RUN --what ...`` (timing is
:mod:`edlnet.bench`; the report gathering everything is :mod:`edlnet.report`).

Python use::

    from edlnet.analysis import Settings, build_context, analyze
    ctx = build_context("runs/my-run", compare=["runs/other-run"], settings=Settings(n_images=16))
    analyze(ctx, ["convergence", "embeddings"])      # PNG + JSON + Markdown in runs/my-run/analysis

Each analysis is one module of this package whose ``run(ctx)`` is registered with
``@register_analysis`` (:mod:`~edlnet.analysis.base` says what it is given and returns);
:data:`ANALYSES` holds them and :func:`analysis_names` lists them in run order. Each is also a
plain function of models and tensors (``convergence.layer_terms``,
``embeddings.embedding_differences``, ``influence.influence``, ``pursuit_metrics.frame_metrics``,
…) for use without files.

Adding an analysis: copy ``perturbations.py`` (the shortest) to a new module, rename it in
``@register_analysis("my-name", help=..., order=...)`` (``applies``/``needs`` when it only
fits some models), fill ``run`` and give its ``AnalysisResult`` a new folder name. The module is
found on the first lookup; ``edlnet analyze --what my-name`` and ``all`` run it, the report shows
it, and ``tests/test_analysis_contract.py`` checks it.
"""

from ..tables import Table, read_table, write_table
from .base import (
    ANALYSES,
    Analysis,
    AnalysisContext,
    AnalysisResult,
    Settings,
    analysis_names,
    register_analysis,
)
from .runner import analyze, build_context
from .sources import ModelSource, load_source

__all__ = [
    "ANALYSES",
    "Analysis",
    "AnalysisContext",
    "AnalysisResult",
    "ModelSource",
    "Settings",
    "Table",
    "analysis_names",
    "analyze",
    "build_context",
    "load_source",
    "read_table",
    "register_analysis",
    "write_table",
]
