"""Analyses of the two papers: ``edlnet analyze`` (timing: :mod:`edlnet.bench`; the report
gathering everything: :mod:`edlnet.report`).

Python use::

    from edlnet.analysis import Settings, build_context, analyze
    ctx = build_context("runs/my-run", compare=["runs/other-run"], settings=Settings(n_images=16))
    analyze(ctx, ["convergence", "embeddings"])      # PNG + JSON + Markdown in runs/my-run/analysis

Command line: ``edlnet analyze RUN --what ...``.
Each analysis is also a plain function of models and tensors (``convergence.layer_terms``,
``embeddings.embedding_differences``, ``influence.influence``, ``pursuit_metrics.frame_metrics``,
…) for use without files.
"""

from ..tables import Table, read_table, write_table
from .context import AnalysisContext, Settings
from .result import AnalysisResult
from .runner import ANALYSES, analyze, build_context
from .sources import ModelSource, load_source

__all__ = [
    "ANALYSES",
    "AnalysisContext",
    "AnalysisResult",
    "ModelSource",
    "Settings",
    "Table",
    "analyze",
    "build_context",
    "load_source",
    "read_table",
    "write_table",
]
