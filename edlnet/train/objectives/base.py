"""What every training objective is: the ``Objective`` contract and the ``Context`` it runs in."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..adversary import Adversary
from . import OptionsError

LossFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class NoOptions:
    """The options of an objective that has none: ``objective_options`` stays empty."""


@dataclass
class Context:
    """What an objective needs besides the batch, made fresh by the trainer for every step."""

    adversary: Adversary  # the inner maximization's settings (threat model, steps, mode, w_grad)
    generator: torch.Generator  # seeded per (run, epoch, step, rank): the step's random start
    autocast: Callable[[], contextlib.AbstractContextManager]  # the run's precision
    helper_model: nn.Module | None = None  # frozen, eval mode: the checkpoint ``helper_model`` names

    def maximize(
        self, model: nn.Module, x: torch.Tensor, loss_fn: LossFn, start: str = "uniform"
    ) -> torch.Tensor:
        """The adversarial examples that maximize ``loss_fn(model(x_adv))`` (summed over the batch),
        from a ``"uniform"`` start in the ball or TRADES' ``"normal"`` one; detached."""
        return self.adversary.maximize(
            model, x, loss_fn, start=start, generator=self.generator, autocast=self.autocast()
        )


class Objective(abc.ABC):
    """A training objective: ``objective(model, x, y, ctx) -> (loss, logits)``.

    ``loss`` is the scalar the trainer backpropagates (weight penalties are added by the
    trainer); ``logits`` are those the training accuracy is counted on (the adversarial ones for
    an adversarial objective). ``y`` is a class index per example, or soft labels under Mixup.

    Subclasses set ``name`` and ``Options`` and say what they need through the class attributes
    below; the trainer reads those and never the name.
    """

    name: ClassVar[str]
    # The settings read from the config's objective_options, with their defaults.
    Options: ClassVar[type] = NoOptions
    # Trains on adversarial examples: the trainer logs train_adv_acc (else train_clean_acc) and
    # keeps the best val_robust_acc (else val_clean_acc) unless the config says otherwise.
    adversarial: ClassVar[bool] = True
    # The option naming a checkpoint the trainer loads (frozen, eval mode, on the run's device)
    # and hands over as ctx.helper_model, e.g. HAT's naturally trained model; None: no helper.
    helper_model: ClassVar[str | None] = None
    # What that checkpoint must hold, for the error when the option is missing.
    helper_model_is: ClassVar[str] = "a trained model"

    def __init__(self, options: Any = None) -> None:
        self.options = self.Options() if options is None else options

    @classmethod
    def check_options(cls, options: Any) -> None:
        """Refuse settings that cannot train (``OptionsError``); by default, a missing helper model."""
        if cls.helper_model and not getattr(options, cls.helper_model):
            raise OptionsError(
                f"objective={cls.name} needs objective_options.{cls.helper_model}=<checkpoint of "
                f"{cls.helper_model_is}>"
            )

    def helper_checkpoint(self) -> str | None:
        """The checkpoint of the helper model this objective needs, or None."""
        return getattr(self.options, self.helper_model) if self.helper_model else None

    @abc.abstractmethod
    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of ``model`` on the batch ``(x, y)`` and the logits it counted."""
