"""Run folders and records: resolved config (YAML), metrics (JSONL), results (JSON), provenance,
each file written atomically.

Every train, eval and bench run writes one folder; reports are built from these files.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ._version import __version__
from .allocator import allocator_state


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write through ``write(tmp_path)`` then rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def git_commit() -> str | None:
    """The commit of the edlnet source tree, with ``-dirty`` when it has local changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("-dirty" if dirty else "")) or None


def cpu_model() -> str | None:
    """The CPU's model name (speeds are only comparable within one machine: records say which)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment() -> dict[str, Any]:
    """Library versions and machine facts recorded with every result."""
    import numpy
    import torch

    env = {
        "edlnet": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "allocator": allocator_state().reason,  # "mallopt" when freed memory is kept (edlnet.allocator)
    }
    try:  # the reference AutoAttack is the PyPI package pyautoattack
        from importlib.metadata import version

        env["pyautoattack"] = version("pyautoattack")
    except Exception:
        pass
    return env


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    return obj


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(_jsonable(data), indent=2, default=str)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def write_yaml(path: Path, data: Any) -> None:
    text = yaml.safe_dump(_jsonable(data), sort_keys=False)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(_jsonable(record), default=str) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """A fresh folder ``out_dir/name`` (suffixed ``-2``, ``-3``, ... when it exists)."""
    base = Path(out_dir) / name
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    path.mkdir(parents=True)
    return path


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def yaml_number(value: Any, annotation: Any) -> Any:
    """``value`` as a float when its field is annotated ``float`` (or ``float | None``) and YAML
    left it a string: YAML 1.1 reads ``1e-5`` (no dot) as text and ``1.0e-5`` as a number, and
    nobody means the text. Other values pass through; a string that is no number is a
    ``ValueError`` whose message completes "<key> ..."."""
    if not isinstance(value, str) or str(annotation).replace(" ", "") not in ("float", "float|None"):
        return value
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"must be a number, got {value!r}") from None
