"""The shared state of one ``edlnet analyze`` call: the models, the images, the settings and
a cache of attacked inputs, so several analyses reuse one attack per model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..attacks import AttackResult
from .adversarial import pgd_attack
from .sources import ModelSource

# The analyses ``edlnet analyze --what`` knows (runner.ANALYSES implements them); listed here so
# building the command-line parser does not import matplotlib.
ANALYSIS_NAMES = (
    "convergence",
    "embeddings",
    "perturbations",
    "noise-recovery",
    "betas",
    "lambda-sweep",
    "curves",
    "influence",
    "pursuit",
)
DEFAULT_NOISES = ("clean", "gaussian:0.08", "gaussian:0.18", "impulse:0.03", "impulse:0.09")
DEFAULT_LAMS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


@dataclass
class Settings:
    """Every knob of the analyses (recorded in each table's ``meta``)."""

    n_images: int = 8
    eps: str = "8/255"  # ℓ∞ budget of the attacks, pixels
    attack_steps: int = 10  # PGD steps
    seed: int = 0
    n_steps: int | None = None  # convergence: RISTA steps to run (None: each layer's own)
    max_steps: int = 4  # influence: n_steps = 0..max_steps through the real layer
    fd_step: float = 1e-4  # influence: central finite-difference step (float64)
    lams: tuple[float, ...] = DEFAULT_LAMS
    noises: tuple[str, ...] = DEFAULT_NOISES
    probe_size: int = 8  # pursuit: global dictionary for (3, s, s) inputs
    max_picture_layers: int = 8  # embeddings picture: layers shown

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class AnalysisContext:
    """``target`` is the model under analysis; ``compare`` are the other models (``--compare``)."""

    target: ModelSource
    compare: list[ModelSource]
    x: torch.Tensor
    y: torch.Tensor
    class_names: tuple[str, ...]
    settings: Settings
    out_dir: Path
    _attacks: dict[int, AttackResult] = field(default_factory=dict, repr=False)

    @property
    def sources(self) -> list[ModelSource]:
        return [self.target, *self.compare]

    def attacked(self, source: ModelSource) -> AttackResult:
        """PGD on ``source`` itself (adaptive, white-box), computed once per model."""
        key = id(source.model)
        if key not in self._attacks:
            s = self.settings
            self._attacks[key] = pgd_attack(source.model, self.x, self.y, s.eps, s.attack_steps, s.seed)
        return self._attacks[key]

    def attack_meta(self) -> dict[str, Any]:
        s = self.settings
        return {
            "attack": f"PGD-{s.attack_steps} Linf, worst case over w_grad exact/detached",
            "eps": s.eps,
            "seed": s.seed,
            "n_images": int(self.x.shape[0]),
        }
