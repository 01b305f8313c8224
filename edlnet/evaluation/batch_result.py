"""What running one entry on one batch gives: per-example results, kept on disk to resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BatchResult:
    """Per-example results of the entry ``entry_name`` on one batch (examples ``start..stop-1``).

    ``robust[i]`` is True when example ``start + i`` is still classified correctly (for
    attacks: correct on the clean image and at the attack's point), None when the entry did
    not evaluate it (beyond a check's ``limit``). ``by_policy`` holds the same per
    reweighting-gradient policy for entries run under both.
    """

    entry_name: str
    batch: int
    start: int
    stop: int
    robust: list[bool | None]
    seconds: float
    by_policy: dict[str, list[bool | None]] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)
    grad_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    settings: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        # Partial-result files call the entry's name "entry" (files of earlier runs resume).
        data = asdict(self)
        return {"entry": data.pop("entry_name"), **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchResult:
        """The inverse of :meth:`to_json`; TypeError when ``data`` is not a batch result."""
        data = dict(data)
        if "entry" not in data:
            raise TypeError("a batch result names its entry ('entry')")
        return cls(entry_name=data.pop("entry"), **data)
