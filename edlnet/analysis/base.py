"""What an analysis is: the context it is given (the models, the test images, the settings and
a cache of attacked inputs), the result it returns (tables and figures) and the decorator that
registers it with ``edlnet analyze``.

An analysis is one module of this package holding one registered function::

    @register_analysis("perturbations", help="the PGD perturbation on each model (Fig. 7)")
    def run(ctx: AnalysisContext) -> AnalysisResult: ...

Every module of the package is imported on the first lookup in :data:`ANALYSES`, so a new
module is known to ``--what`` (and ``all``), to the report and to the tests without any other
edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..attacks import PGD, Adaptive, AttackResult
from ..layers.dict_conv import dict_layers
from ..registry import Registry
from .sources import ModelSource

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..tables import Table

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
    """The shared state of one ``edlnet analyze`` call. ``target`` is the model under analysis;
    ``compare`` are the other models (``--compare``). Attacks are cached per model, so several
    analyses reuse one attack."""

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
        """ℓ∞ PGD on ``source`` itself (adaptive, white-box), computed once per model.

        Run under both reweighting-gradient policies with the per-example worst case kept
        (``Adaptive``): exact gradients through a dictionary layer's reweighting can explode and
        detached ones can point the wrong way, so either policy alone can under-attack."""
        key = id(source.model)
        if key not in self._attacks:
            s = self.settings
            attack = PGD(source.model, eps=s.eps, norm="Linf", steps=s.attack_steps, seed=s.seed)
            self._attacks[key] = Adaptive(attack).run(self.x, self.y)
        return self._attacks[key]

    def attack_meta(self) -> dict[str, Any]:
        s = self.settings
        return {
            "attack": f"PGD-{s.attack_steps} Linf, worst case over w_grad exact/detached",
            "eps": s.eps,
            "seed": s.seed,
            "n_images": int(self.x.shape[0]),
        }


@dataclass
class AnalysisResult:
    """What one analysis returns, written to disk by the runner. ``name`` is the output folder
    (``RUN/analysis/<name>``); ``figures`` maps a file stem (``"convergence"``) to a figure and
    ``captions`` the same stems to one-line captions; ``notes`` are observations for the report
    (skipped models, caveats)."""

    name: str
    tables: list[Table] = field(default_factory=list)
    figures: dict[str, Figure] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


AnalysisFunction = Callable[[AnalysisContext], AnalysisResult]


def always(ctx: AnalysisContext) -> bool:
    """Applies to every model."""
    return True


def has_dictionary_layers(ctx: AnalysisContext) -> bool:
    """The target model has dictionary layers."""
    return bool(dict_layers(ctx.target.model))


NEEDS_DICTIONARY_LAYERS = "dictionary layers in the model (train with dl=vanilla|elastic)"
DEFAULT_ORDER = 100  # after the built-in analyses (10–90)


@dataclass(frozen=True)
class Analysis:
    """A registered analysis. ``applies`` says whether it can run on a context (``all`` skips
    it otherwise); ``needs`` is what ``applies`` checks, told to the user who asks for it by
    name; ``order`` places it in ``all``, in the index and in the report (then the name)."""

    name: str
    run: AnalysisFunction
    help: str
    applies: Callable[[AnalysisContext], bool] = always
    needs: str = ""
    order: int = DEFAULT_ORDER


# Every module of this package is imported on the first lookup: a new analysis module is found
# by being here.
ANALYSES: Registry[Analysis] = Registry("analysis", package=__name__.rpartition(".")[0])


def register_analysis(
    name: str,
    *,
    help: str,
    applies: Callable[[AnalysisContext], bool] = always,
    needs: str = "",
    order: int = DEFAULT_ORDER,
) -> Callable[[AnalysisFunction], AnalysisFunction]:
    """Decorator: register ``run(ctx) -> AnalysisResult`` as the analysis ``name`` of
    ``edlnet analyze --what NAME``; ``help`` is its one-line description in the index and the
    report. The function is returned unchanged, so it stays callable on its own."""
    if applies is not always and not needs:
        raise ValueError(
            f"analysis {name!r} has an applies= check but no needs=: say what it checks "
            "(e.g. needs='a run folder with metrics.jsonl'), so a user who asks for it learns why not"
        )

    def register(run: AnalysisFunction) -> AnalysisFunction:
        ANALYSES.add(name, Analysis(name, run, help, applies, needs, order))
        return run

    return register


def analysis_names() -> list[str]:
    """Every registered analysis, in the order ``all`` runs them."""
    return [a.name for _, a in sorted(ANALYSES.items(), key=lambda item: (item[1].order, item[0]))]
