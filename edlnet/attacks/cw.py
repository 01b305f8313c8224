"""Carlini-Wagner L2 attack: minimal-norm adversarial examples by optimization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import Attack, EpsLike, parse_eps, robust_at
from .losses import is_fooled
from .registry import register_attack

# Keeps atanh finite at pixels exactly 0 or 1.
_TANH_SHRINK = 1 - 1e-6
# Binary search treats the upper bound of c as unset while it is this large.
_UNSET = 1e10


@register_attack
class CarliniWagnerL2(Attack):
    """Carlini & Wagner L2 attack ("Towards Evaluating the Robustness of Neural Networks",
    IEEE S&P 2017): minimize ``||x' - x||_2^2 + c * max(z_y - max_{j != y} z_j, -kappa)`` over
    ``x' = (tanh(w) + 1) / 2`` (the tanh box keeps x' in [0, 1]) with Adam, and binary-search
    the constant ``c`` per example.

    It is a minimal-norm attack: ``run`` reports per-example ``info["norm"]``, the smallest L2
    norm found (0 for an example already misclassified, inf where none was found), and
    ``info["found"]``. With ``eps=None`` the returned examples are unbounded; with an eps, those
    whose minimal norm exceeds it come back as the clean image. ``robust_at(info["norm"], eps)``
    gives robustness at any budget from one run.

    Defaults: ``binary_search_steps=9``, ``initial_const=1e-3``, ``lr=0.01``,
    ``confidence=0`` as in the paper; ``steps=100`` Adam iterations per search step (the
    paper's code uses 10,000, which is out of reach on CPU; raise it for final numbers);
    ``abort_early=True`` stops a search step whose loss stalled.
    """

    name = "cw-l2"
    norms = ("L2",)
    suite_name = "cw-l2"
    follows_model_gradients = True
    example_settings = ({"steps": 5, "binary_search_steps": 2},)
    minimal_norm = True

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: EpsLike | None = None,
        steps: int = 100,
        binary_search_steps: int = 9,
        initial_const: float = 1e-3,
        lr: float = 0.01,
        confidence: float = 0.0,
        abort_early: bool = True,
        w_grad: str | None = None,
    ) -> None:
        super().__init__(model, eps=eps, norm="L2", w_grad=w_grad)
        if steps < 1 or binary_search_steps < 1:
            raise ValueError("CW needs steps >= 1 and binary_search_steps >= 1")
        self.steps = int(steps)
        self.binary_search_steps = int(binary_search_steps)
        self.initial_const = float(initial_const)
        self.lr = float(lr)
        self.confidence = float(confidence)
        self.abort_early = bool(abort_early)

    def _settings(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "binary_search_steps": self.binary_search_steps,
            "initial_const": self.initial_const,
            "lr": self.lr,
            "confidence": self.confidence,
            "abort_early": self.abort_early,
        }

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        n = x.shape[0]
        with torch.no_grad():
            clean_fooled = is_fooled(self.model(x), y)
        best_norm = torch.where(clean_fooled, 0.0, float("inf")).to(x)
        best = x.clone()
        lower = torch.zeros(n, device=x.device)
        upper = torch.full((n,), _UNSET, device=x.device)
        const = torch.full((n,), self.initial_const, device=x.device)
        w_clean = torch.atanh((2 * x - 1) * _TANH_SHRINK)
        for _ in range(self.binary_search_steps):
            succeeded = self._optimize(x, y, w_clean, const, best, best_norm, clean_fooled)
            upper = torch.where(succeeded, torch.minimum(upper, const), upper)
            lower = torch.where(succeeded, lower, torch.maximum(lower, const))
            bounded = upper < _UNSET / 10
            const = torch.where(bounded, (lower + upper) / 2, const * 10)
        return best, {"norm": best_norm, "found": torch.isfinite(best_norm)}

    def _optimize(
        self,
        x: Tensor,
        y: Tensor,
        w_clean: Tensor,
        const: Tensor,
        best: Tensor,
        best_norm: Tensor,
        skip: Tensor,
    ) -> Tensor:
        """One binary-search step: Adam on w; updates ``best``/``best_norm`` in place and
        returns which examples reached an adversarial point at this ``const``."""
        w = w_clean.clone().requires_grad_(True)
        optimizer = _Adam(w, self.lr)
        succeeded = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        check_every = max(self.steps // 10, 1)
        previous = float("inf")
        for step in range(self.steps):
            x_adv = (torch.tanh(w) + 1) / 2
            logits = self.model(x_adv)
            dist = (x_adv - x).pow(2).reshape(x.shape[0], -1).sum(dim=1)
            true = logits.gather(1, y[:, None]).squeeze(1)
            other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
            hinge = (true - other).clamp_min(-self.confidence)
            loss = (dist + const * hinge).sum()
            (grad,) = torch.autograd.grad(loss, w)
            optimizer.step(self._sanitize_grad(grad, count_zero=False))
            with torch.no_grad():
                adversarial = is_fooled(logits, y) & (other - true >= self.confidence) & ~skip
                norm = dist.sqrt()
                better = adversarial & (norm < best_norm)
                best[better] = x_adv.detach()[better]
                best_norm[better] = norm[better]
                succeeded |= adversarial
            if self.abort_early and step % check_every == 0:
                if loss.item() > previous * 0.9999:
                    break
                previous = loss.item()
        return succeeded


class _Adam:
    """Adam (Kingma & Ba 2015) with torch's defaults, on one tensor.

    Written out because constructing ``torch.optim.Adam`` imports torch._dynamo, about two
    seconds per process, more than a small CW run itself.
    """

    def __init__(
        self, param: Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    @torch.no_grad()
    def step(self, grad: Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v / (1 - b2**self.t)).sqrt_().add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))


def cw_accuracy(
    model: nn.Module, x: Tensor, y: Tensor, eps: EpsLike | Sequence[EpsLike], **cw_kwargs: Any
) -> dict[str, float]:
    """Robust accuracy under L2 budget(s) from one unbounded CW run.

    Returns ``{"8/255": acc, ...}`` keyed by each budget's exact string, plus ``"clean"``.
    An example counts as robust at eps when CW found no adversarial example of norm <= eps.
    """
    budgets = list(eps) if isinstance(eps, Sequence) and not isinstance(eps, str) else [eps]
    result = CarliniWagnerL2(model, eps=None, **cw_kwargs).run(x, y)
    norms = result.info["norm"]
    accuracy = {"clean": float((norms > 0).float().mean())}
    for budget in budgets:
        frac, _ = parse_eps(budget)
        accuracy[str(frac)] = float(robust_at(norms, frac).float().mean())
    return accuracy
