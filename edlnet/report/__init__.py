"""``edlnet report``: one Markdown file and its self-contained HTML twin gathering runs, their
evaluations, the analyses written by ``edlnet analyze`` and the ``edlnet bench`` tables, every
number read from those files.

Python use::

    from edlnet.report import build_report
    md_path, html_path = build_report(["runs/my-run", "runs/bench-..."], "report.md")

Modules: :mod:`~edlnet.report.build` (what the report shows, section by section) and
:mod:`~edlnet.report.document` (the blocks it is made of, rendered as Markdown and HTML).
"""

from .build import build_report

__all__ = ["build_report"]
