"""Reading a training run folder: what marks one, its config, per-epoch metrics, the two-stage
switch, evaluation results and the analysis index. The analyses that read run files (curves, β)
and everything ``edlnet report`` shows come through here, from the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..records import read_jsonl

RUN_MARKERS = ("metrics.jsonl", "config.yaml")  # files `edlnet train` writes into a run folder
ANALYSIS_DIR = "analysis"
INDEX = "index.json"


def run_config(run_dir: Path | None) -> dict[str, Any]:
    """The run's resolved config (``config.yaml``), or ``{}``."""
    if run_dir is None or not (run_dir / "config.yaml").exists():
        return {}
    return yaml.safe_load((run_dir / "config.yaml").read_text()) or {}


def metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's ``metrics.jsonl`` records (one per epoch), in order."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: training curves and β over epochs need a run folder written by `edlnet train`"
        )
    return read_jsonl(path)


def switch_epoch(records: list[dict[str, Any]]) -> int | None:
    """The first epoch (1-based, as recorded) trained in Elastic mode after Vanilla epochs,
    i.e. the Vanilla→Elastic switch of two-stage training; ``None`` without a switch."""
    previous = None
    for r in records:
        mode = str(r.get("mode", ""))
        if previous is not None and "elastic" in mode and "elastic" not in previous:
            return int(r["epoch"])
        previous = mode
    return None


def eval_results(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{suite: results}`` from every ``RUN/eval/<suite>/results.json``."""
    out = {}
    for path in sorted(Path(run_dir).glob("eval/*/results.json")):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            out[path.parent.name] = {"error": f"unreadable {path}: {e}"}
    return out


def read_json(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def analysis_index(folder: str | Path) -> dict[str, Any]:
    """The index of analyses written into ``folder`` (``RUN/analysis``) by ``edlnet analyze``."""
    return read_json(Path(folder) / INDEX) or {}
