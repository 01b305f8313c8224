"""Adaptive evaluation of dictionary layers: attack under both reweighting-gradient policies.

Neither backward pass is safe alone (docs/attacks.md): exact gradients through the
reweighting w can explode, detached ones can point the wrong way. So a gradient attack is run
once per policy and each example keeps the worst case: it counts as robust only if it
survives both runs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from edlnet.layers.gradient_policy import W_GRAD_POLICIES, has_w_grad_policy

from .base import Attack, AttackResult, perturbation_norm
from .losses import margin


class Adaptive(Attack):
    """Worst case of ``attack`` over the ``w_grad`` policies (``"exact"`` and ``"detached"``).

    Runs a copy of ``attack`` with each policy (the attack's own ``w_grad`` is ignored). Per
    example it keeps an adversarial example if any run found one (the smaller perturbation if
    both did), otherwise the point with the lowest true-class margin. On a model without
    dictionary layers the policies change nothing and the attack runs once.

    ``cascade=True`` runs each policy after the first only on the examples still robust
    (AutoAttack's scheme: the worst case is the same, the cost lower); its per-policy
    robustness then covers only the examples it ran on (the others read robust for it).

    ``run`` reports ``info["robust_by_policy"]`` (policy -> per-example robustness),
    ``info["chosen_policy"]`` (per example, the policy whose point was kept) and
    ``info["by_policy"]`` (each run's own info).
    """

    name = "adaptive"
    norms = ("Linf", "L2", "L1", "L0")

    def __init__(
        self, attack: Attack, policies: Sequence[str] = W_GRAD_POLICIES, cascade: bool = False
    ) -> None:
        self.minimal_norm = attack.minimal_norm  # a minimal-norm attack may have no budget
        super().__init__(attack.model, eps=attack.eps_fraction, norm=attack.norm, w_grad=None)
        unknown = [p for p in policies if p not in W_GRAD_POLICIES]
        if unknown or not policies:
            raise ValueError(f"unknown w_grad policies {unknown or policies}; use {W_GRAD_POLICIES}")
        self.attack = attack
        self.policies = tuple(policies)
        self.cascade = bool(cascade)

    def active_policies(self) -> tuple[str | None, ...]:
        """The policies that will actually be run: ``(None,)`` without dictionary layers."""
        return self.policies if has_w_grad_policy(self.model) else (None,)

    def _settings(self) -> dict[str, Any]:
        return {
            "attack": self.attack.settings(),
            "policies": list(self.active_policies()),
            "cascade": self.cascade,
        }

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        policies = self.active_policies()
        results: list[AttackResult] = []
        ran: list[Tensor] = []
        alive = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        for policy in policies:
            attack = copy.copy(self.attack)
            attack.w_grad = policy
            if not self.cascade or bool(alive.all()):
                result = attack.run(x, y)
            else:
                result = _run_on(attack, x, y, alive)
            results.append(result)
            # Which examples this policy attacked: all of them unless cascading.
            ran.append(alive.clone() if self.cascade else torch.ones_like(alive))
            alive &= result.robust
        best, chosen = _worst_case(self.model, x, y, results, self.norm)
        names = [str(p) for p in policies]
        return best, {
            "robust_by_policy": {n: r.robust for n, r in zip(names, results)},
            "ran_by_policy": {n: m for n, m in zip(names, ran)},
            "chosen_policy": [names[i] for i in chosen.tolist()],
            "by_policy": {n: r.info for n, r in zip(names, results)},
        }


def _run_on(attack: Attack, x: Tensor, y: Tensor, alive: Tensor) -> AttackResult:
    """``attack`` on the still-robust examples only. The others keep the clean image and are
    marked robust *for this run*: an earlier policy already broke them, and the worst case must
    keep that policy's adversarial point, not the clean image. Info is kept for what ran."""
    idx = alive.nonzero().flatten()
    x_adv, robust = x.clone(), torch.ones_like(alive)
    info: dict[str, Any] = {}
    if len(idx):
        part = attack.run(x[idx], y[idx])
        x_adv[idx], robust[idx], info = part.x_adv, part.robust, part.info
    return AttackResult(x_adv=x_adv, robust=robust, info=info)


def adaptive(attack: Attack, x: Tensor, y: Tensor, policies: Sequence[str] = W_GRAD_POLICIES) -> AttackResult:
    """Run ``attack`` under every ``w_grad`` policy and keep the per-example worst case."""
    return Adaptive(attack, policies).run(x, y)


def _worst_case(
    model: torch.nn.Module, x: Tensor, y: Tensor, results: list[AttackResult], norm: str
) -> tuple[Tensor, Tensor]:
    best = results[0].x_adv.clone()
    fooled = ~results[0].robust
    size = perturbation_norm(best - x, norm)
    with torch.no_grad():
        score = margin(model(best), y)
    chosen = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for i, result in enumerate(results[1:], start=1):
        new_fooled = ~result.robust
        new_size = perturbation_norm(result.x_adv - x, norm)
        with torch.no_grad():
            new_score = margin(model(result.x_adv), y)
        take = (
            (new_fooled & ~fooled)
            | (new_fooled & fooled & (new_size < size))
            | (~new_fooled & ~fooled & (new_score > score))
        )
        best[take] = result.x_adv[take]
        size = torch.where(take, new_size, size)
        score = torch.where(take, new_score, score)
        fooled = fooled | new_fooled
        chosen[take] = i
    return best, chosen
