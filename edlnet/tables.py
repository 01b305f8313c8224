"""Tables: the one record type every analysis (``edlnet analyze``) and the Table 7 benchmark
(``edlnet bench``) write, as JSON (exact numbers, for programs and ``edlnet report``) and
Markdown (for people), with the Markdown grid the report and the layer benchmark also use.

Top-level beside :mod:`edlnet.records` because all three commands' packages write or read
tables, and the benchmark should not depend on the analyses just for this record type."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .records import atomic_write, write_json


@dataclass
class Table:
    """A titled table: ``rows`` are dicts keyed by ``columns``; ``notes`` say what the numbers
    are (units, definitions) and ``meta`` holds the settings that produced them."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def column(self, key: str) -> list[Any]:
        """All values of one column, in row order."""
        return [row.get(key) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": list(self.columns),
            "rows": self.rows,
            "notes": list(self.notes),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Table:
        return cls(
            name=data["name"],
            title=data["title"],
            columns=list(data["columns"]),
            rows=list(data["rows"]),
            notes=list(data.get("notes", [])),
            meta=dict(data.get("meta", {})),
        )

    def to_markdown(self, heading: str = "###") -> str:
        """GitHub-flavoured Markdown: the title (as a heading of that level, or bold when
        ``heading`` is empty), the table, then the notes."""
        lines = [f"{heading} {self.title}" if heading else f"**{self.title}**", ""]
        lines.append(markdown_grid(self.columns, [[row.get(c) for c in self.columns] for row in self.rows]))
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines) + "\n"


def format_value(value: Any) -> str:
    """Numbers with 4 significant digits; everything else as text (``None`` as an en dash)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_grid(columns: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table from a header and rows of raw values."""
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(format_value(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def write_table(table: Table, folder: str | Path) -> tuple[Path, Path]:
    """Write ``folder/<name>.json`` and ``folder/<name>.md``; returns both paths."""
    folder = Path(folder)
    json_path, md_path = folder / f"{table.name}.json", folder / f"{table.name}.md"
    write_json(json_path, table.to_dict())
    text = table.to_markdown()
    atomic_write(md_path, lambda tmp: Path(tmp).write_text(text))
    return json_path, md_path


def read_table(path: str | Path) -> Table:
    """Read a table written by :func:`write_table` (the ``.json`` file)."""
    path = Path(path)
    try:
        return Table.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(
            f"cannot read analysis table {path}: {e}; re-run `edlnet analyze` to rewrite it"
        ) from None
