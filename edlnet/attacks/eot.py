"""Expectation over Transformation: PGD on the average gradient of a randomized model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import AttackResult, EpsLike, attack_mode
from .pgd import PGD, _keep_best
from .registry import register_attack


def is_randomized(model: nn.Module, x: Tensor, n: int = 2) -> bool:
    """True when ``n`` eval-mode forward passes of ``model`` on the same ``x`` (no gradient) do
    not all give bitwise-equal outputs (``torch.equal``). The model's modes are restored.

    Nondeterministic kernels (some GPU reductions) count as randomness here; whether to run EOT
    on that basis is the caller's decision.
    """
    if n < 2:
        raise ValueError(f"is_randomized needs n >= 2 forward passes, got {n}")
    with attack_mode(model, None, x.device.type), torch.no_grad():
        first = model(x)
        return any(not torch.equal(first, model(x)) for _ in range(n - 1))


def majority_robust(votes: Tensor, y: Tensor) -> Tensor:
    """Robust where the true class gets strictly more of the ``votes`` (N, C) than any other
    class; a tie counts as fooled (the attacker-favourable, conservative reading)."""
    true = votes.gather(1, y[:, None]).squeeze(1)
    others = votes.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return true > others


@contextlib.contextmanager
def _seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed the global RNG (the one a randomized model draws from) for the duration of the
    block and give the caller back its own state afterwards."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


@register_attack
class EOTPGD(PGD):
    """PGD with Expectation over Transformation (Athalye, Carlini & Wagner, "Obfuscated
    Gradients Give a False Sense of Security", ICML 2018, Sec. 4.3; Athalye, Engstrom, Ilyas &
    Kwok, "Synthesizing Robust Adversarial Examples", ICML 2018): against a model that is random
    at test time, each step follows the average of the input gradients of ``eot_samples``
    independent forward passes, an estimate of ∇ₓ E[L], instead of one noisy sample.

    Judging is by the expectation too: each iterate's loss is the mean over the ``eot_samples``
    passes, and an example counts as robust (in the best-iterate selection and in the final
    ``robust``) when the true class is the strict majority prediction of ``eot_samples``
    passes (ties count as fooled; see :func:`majority_robust`). ``info["single_pass_robust"]``
    keeps the one-pass verdict and ``info["votes"]`` the final per-class vote counts.

    Reproducibility: the starts come from a private generator seeded with ``seed``, and the
    model's own randomness, drawn from the global RNG, is seeded with ``seed`` inside a fork of
    the global RNG state, so a run is reproducible and the caller's RNG state is unchanged.

    ``norm="Linf"`` (default) or ``"L2"``; defaults ``steps=20``, ``alpha = 2.5·eps/steps``,
    ``eot_samples=8``, ``restarts=1``, ``random_start=True``, ``loss="ce"``, ``seed=0``.
    Gradient statistics count every sample's gradient (``eot_samples`` per example and step).
    Whether a model needs EOT is the caller's decision (see :func:`is_randomized`).
    """

    name = "eot_pgd"
    norms = ("Linf", "L2")
    suite_name = "eot-pgd"
    follows_model_gradients = True
    example_settings = ({"steps": 3, "eot_samples": 2},)

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: EpsLike,
        norm: str = "Linf",
        steps: int = 20,
        alpha: EpsLike | None = None,
        eot_samples: int = 8,
        restarts: int = 1,
        random_start: bool = True,
        seed: int = 0,
        loss: str = "ce",
        w_grad: str | None = None,
    ) -> None:
        super().__init__(
            model,
            eps=eps,
            norm=norm,
            steps=steps,
            alpha=alpha,
            restarts=restarts,
            random_start=random_start,
            loss=loss,
            seed=seed,
            w_grad=w_grad,
        )
        if eot_samples < 1:
            raise ValueError(f"eot_samples must be >= 1, got {eot_samples}")
        self.eot_samples = int(eot_samples)

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "eot_samples": self.eot_samples}

    def run(self, x: Tensor, y: Tensor) -> AttackResult:
        """As :meth:`Attack.run`, with ``robust`` from the majority vote of ``eot_samples``
        passes at the returned points."""
        with _seeded_global_rng(self.seed, x.device):
            result = super().run(x, y)
            y = y.detach().long()
            with attack_mode(self.model, None, x.device.type), torch.no_grad():
                votes = self._expectation(result.x_adv, y, with_grad=False)[0]
        result.info["single_pass_robust"] = result.robust
        result.info["votes"] = votes
        result.robust = majority_robust(votes, y)
        return result

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        # PGD's loop, with every score and gradient taken over eot_samples passes.
        gen = torch.Generator(device=x.device).manual_seed(self.seed)
        best = x.clone()
        best_loss = torch.full((x.shape[0],), float("-inf"), device=x.device)
        best_fooled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for restart in range(self.restarts):
            x_adv = self._start(x, gen) if (self.random_start or restart > 0) else x.clone()
            for step in range(self.steps + 1):
                last = step == self.steps  # the last iterate is scored, not stepped from
                votes, loss, grad = self._expectation(x_adv, y, with_grad=not last)
                _keep_best(best, best_loss, best_fooled, x_adv, loss, ~majority_robust(votes, y))
                if not last:
                    x_adv = self._step(x, x_adv, grad)
        return best, {"loss": best_loss}

    def _expectation(self, x_adv: Tensor, y: Tensor, with_grad: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        """Prediction votes (N, C), mean loss and mean input gradient over the passes."""
        votes: Tensor | None = None
        loss_sum = torch.zeros(x_adv.shape[0], device=x_adv.device)
        grad_sum = torch.zeros_like(x_adv) if with_grad else None
        for _ in range(self.eot_samples):
            # One pass at a time: memory stays that of a single forward, and each sample's
            # gradient is sanitized before it can poison the average.
            if with_grad:
                logits, loss, grad = self._loss_and_grad(x_adv, y, self._loss_fn)
                grad_sum += grad
            else:
                with torch.no_grad():
                    logits = self.model(x_adv)
                    loss = self._loss_fn(logits, y)
            if votes is None:
                votes = torch.zeros_like(logits)
            # A pass with non-finite logits votes for no class (so never for the true one),
            # as the base class's judge never credits a broken computation with robustness.
            finite = torch.isfinite(logits).all(dim=1, keepdim=True)
            votes += F.one_hot(logits.argmax(dim=1), logits.shape[1]).to(votes) * finite
            loss_sum += loss
        mean_grad = None if grad_sum is None else grad_sum / self.eot_samples
        return votes, loss_sum / self.eot_samples, mean_grad


__all__ = ["EOTPGD", "is_randomized", "majority_robust"]
