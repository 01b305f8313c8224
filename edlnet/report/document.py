"""A tiny document model for the report: a list of blocks rendered twice, as Markdown (images
linked by relative path) and as one self-contained HTML file (images embedded as base64)."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tables import Table, format_value, markdown_grid


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Grid:
    """A plain table: header and rows of raw values."""

    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Image:
    path: Path
    caption: str


Block = Heading | Paragraph | Bullets | Grid | Table | Image


def to_markdown(blocks: list[Block], md_path: Path) -> str:
    """Markdown; images are linked relative to ``md_path``'s folder."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Grid):
            out.append(markdown_grid(b.columns, b.rows))
        elif isinstance(b, Table):
            out.append(b.to_markdown(heading="").rstrip("\n"))
        elif isinstance(b, Image):
            rel = Path(os.path.relpath(b.path.resolve(), md_path.parent.resolve())).as_posix()
            out.append(f"![{b.caption}]({rel})\n\n*{b.caption}*")
    return "\n\n".join(out) + "\n"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
figcaption{font-style:italic;font-size:.9em;color:#555}.notes{font-size:.85em;color:#444}"""


def _html_grid(columns: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)

    def cell(v: Any) -> str:  # format_value escapes "|" for Markdown; HTML needs no escape
        return f"<td>{html.escape(format_value(v).replace(chr(92) + '|', '|'))}</td>"

    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(blocks: list[Block], title: str) -> str:
    """One self-contained HTML page (images inline as data URIs)."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{CSS}</style></head><body>"
    ]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Bullets):
            parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Grid):
            parts.append(_html_grid(b.columns, b.rows))
        elif isinstance(b, Table):
            parts.append(f"<p><b>{html.escape(b.title)}</b></p>")
            parts.append(_html_grid(b.columns, [[r.get(c) for c in b.columns] for r in b.rows]))
            if b.notes:
                parts.append(
                    "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in b.notes) + "</ul>"
                )
        elif isinstance(b, Image):
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(b.caption)}' "
                f"src='data:image/png;base64,{data}'><figcaption>"
                f"{html.escape(b.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
