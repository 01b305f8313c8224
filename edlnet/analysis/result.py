"""What one analysis returns: tables and figures, written to disk by the runner."""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure

from ..tables import Table


@dataclass
class AnalysisResult:
    """``figures`` maps a file stem (``"convergence"``) to a figure and ``captions`` the same
    stems to one-line captions; ``notes`` are observations for the report (skipped models,
    caveats)."""

    name: str
    tables: list[Table] = field(default_factory=list)
    figures: dict[str, Figure] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
