"""Resuming a run folder: whether it can be resumed, and which config changes a resume allows.

A resumed run continues the run its ``config.yaml`` describes. ``--set`` may change the keys in
``OPERATIONAL_KEYS`` (how the run executes: threads, log lines, the device); any other change
(``lr``, ``epochs``, ``dl_options.lam``, ...) changes what is computed and is refused unless it is
asked for by name (``--allow-change KEY``); the trainer then records it in
``config_changes.jsonl`` and rewrites ``config.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import checkpoint as ckpt
from . import commits
from .config import ConfigError, TrainConfig
from .state import LEGACY_STATE, STATE_JSON

# what checkpoints/last must hold to resume from it (old run folders: train_state.pt)
RESUME_FILES = (ckpt.META, ckpt.WEIGHTS, (STATE_JSON, LEGACY_STATE))
# config keys that change how a run executes, not what it computes: free to change on resume
OPERATIONAL_KEYS = ("threads", "log_every", "device")


def resumable(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` has a checkpoint to resume from (``last``, or ``last.prev`` or an
    interrupted commit when ``last`` is missing or damaged: ``--resume`` sorts them out)."""
    folder = Path(run_dir) / "checkpoints"
    committed = any(
        (folder / name / f).exists()
        for name in ("last", "last" + commits.PREV)
        for f in (STATE_JSON, LEGACY_STATE)
    )
    # a commit killed between its renames: complete once its manifest (written last) is there
    pending = (folder / (".last" + commits.TMP) / commits.MANIFEST).exists()
    return (Path(run_dir) / "config.yaml").exists() and (committed or pending)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(old: TrainConfig, new: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old, new)}`` for every setting that differs."""
    a, b = _flat(old.to_dict()), _flat(new.to_dict())
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def check_resume_changes(
    changes: dict[str, tuple[Any, Any]], allow: tuple[str, ...] = ()
) -> dict[str, tuple[Any, Any]]:
    """Refuse ``--set`` overrides that change what a resumed run computes, unless each changed
    key (or its top-level key, e.g. ``dl_options``) is named in ``allow``; returns the allowed
    changes other than the operational ones."""

    def allowed(key: str) -> bool:
        top = key.split(".")[0]
        return top in OPERATIONAL_KEYS or key in allow or top in allow

    refused = {k: v for k, v in changes.items() if not allowed(k)}
    if refused:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
        flags = " ".join(f"--allow-change {k}" for k in refused)
        raise ConfigError(
            f"--resume with --set would change the run: {listed}. A resumed run continues "
            f"the one in config.yaml; to change it anyway pass {flags} (only "
            f"{', '.join(OPERATIONAL_KEYS)} may change freely)"
        )
    return {k: v for k, v in changes.items() if k.split(".")[0] not in OPERATIONAL_KEYS}
