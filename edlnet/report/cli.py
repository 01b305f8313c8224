"""``edlnet report``: one Markdown and one self-contained HTML file from run and bench folders
(:func:`edlnet.report.build_report`)."""

from __future__ import annotations

import argparse

from ..cli import command


@command("report", "one Markdown + HTML report of runs, their evaluations, analyses and bench tables")
def _report(p: argparse.ArgumentParser):
    p.add_argument(
        "paths", nargs="+", metavar="RUN_DIR", help="run folders, bench folders, or folders containing them"
    )
    p.add_argument(
        "--out",
        help="Markdown file (default RUN/report.md for one run, else ./report.md); the HTML goes beside it",
    )

    def run(args) -> int:
        from .build import build_report

        md, html = build_report(args.paths, args.out)
        print(f"wrote {md} and {html}")
        return 0

    return run
