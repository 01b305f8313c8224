"""SparseFool: sparse (L1) adversarial perturbations from DeepFool linearizations."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import Attack, EpsLike, normalize_l2, perturbation_norm
from .losses import is_fooled
from .registry import register_attack

# DeepFool's minimum step, so an iterate sitting on the boundary still moves.
_MIN_STEP = 1e-4
# Linear solver's overshoot past the hyperplane, in units of the unit normal (as in the paper's code).
_BETA = 1e-3


@register_attack
class SparseFool(Attack):
    """SparseFool (Modas, Moosavi-Dezfooli & Frossard, "SparseFool: a few pixels make a big
    difference", CVPR 2019), an L1 minimal-perturbation attack inside the [0, 1] box.

    Each outer iteration runs DeepFool (L2) from the current point to find the nearest
    boundary point, takes the boundary's normal there, moves the boundary point out to
    ``x_i + lambda_ * r_deepfool`` and solves the linearized problem with the box-constrained
    greedy L1 solver (one coordinate at a time, largest |normal| first). The candidate
    ``x + (1 + overshoot)(x_i - x)`` is checked against the model; the loop ends when it fools.

    ``lambda_`` trades sparsity for speed: 1 is the sparsest (the linearized boundary
    itself), larger values converge in fewer iterations with denser perturbations. Defaults
    follow the authors' code: ``lambda_=3``, ``max_iter=20``, ``overshoot=0.02``, DeepFool with
    ``deepfool_max_iter=50`` over the ``n_candidates=10`` top classes.

    ``run`` reports per example ``info["norm"]`` (L1), ``info["l0"]`` (number of changed
    coordinates), ``info["found"]`` and ``info["iterations"]``; norms are 0 for an example
    misclassified unperturbed and inf where no adversarial example was found (which then comes
    back as the clean image). An ``eps`` sets an L1 budget; examples beyond it also come back clean.
    """

    name = "sparsefool"
    norms = ("L1",)
    suite_name = "sparsefool"
    follows_model_gradients = True
    example_settings = ({"max_iter": 3, "deepfool_max_iter": 5, "n_candidates": 3},)
    minimal_norm = True

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: EpsLike | None = None,
        lambda_: float = 3.0,
        max_iter: int = 20,
        overshoot: float = 0.02,
        deepfool_max_iter: int = 50,
        n_candidates: int = 10,
        w_grad: str | None = None,
    ) -> None:
        super().__init__(model, eps=eps, norm="L1", w_grad=w_grad)
        if lambda_ < 1:
            raise ValueError(f"SparseFool needs lambda_ >= 1 (1 = on the boundary), got {lambda_}")
        if n_candidates < 2:
            raise ValueError("SparseFool needs n_candidates >= 2 (the true class and one other)")
        self.lambda_ = float(lambda_)
        self.max_iter = int(max_iter)
        self.overshoot = float(overshoot)
        self.deepfool_max_iter = int(deepfool_max_iter)
        self.n_candidates = int(n_candidates)

    def _settings(self) -> dict[str, Any]:
        return {
            "lambda": self.lambda_,
            "max_iter": self.max_iter,
            "overshoot": self.overshoot,
            "deepfool_max_iter": self.deepfool_max_iter,
            "n_candidates": self.n_candidates,
        }

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        with torch.no_grad():
            fooled = is_fooled(self.model(x), y)
        clean_fooled = fooled.clone()
        x_i = x.clone()
        adv = x.clone()
        iterations = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        for _ in range(self.max_iter):
            idx = (~fooled).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            normal, boundary = self._deepfool(x_i[idx], y[idx])
            x_i[idx] = linear_solver(x_i[idx], normal, boundary)
            candidate = (x[idx] + (1 + self.overshoot) * (x_i[idx] - x[idx])).clamp(0.0, 1.0)
            with torch.no_grad():
                done = is_fooled(self.model(candidate), y[idx])
            adv[idx[done]] = candidate[done]
            fooled[idx[done]] = True
            iterations[idx] += 1
        delta = adv - x
        found = fooled & ~clean_fooled
        inf = torch.full((x.shape[0],), float("inf"), device=x.device)
        l1 = torch.where(found, perturbation_norm(delta, "L1"), inf)
        l0 = torch.where(found, perturbation_norm(delta, "L0"), inf)
        l1[clean_fooled] = 0.0
        l0[clean_fooled] = 0.0
        return adv, {"norm": l1, "l0": l0, "found": torch.isfinite(l1), "iterations": iterations}

    def _deepfool(self, x0: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Batched DeepFool (Moosavi-Dezfooli et al., CVPR 2016) from ``x0``.

        Returns the unit normal of the boundary at the (un-overshot) DeepFool point and the
        boundary point pushed out by ``lambda_``.
        """
        with torch.no_grad():
            logits = self.model(x0)
        k = min(self.n_candidates, logits.shape[1]) - 1
        candidates = logits.scatter(1, y[:, None], float("-inf")).topk(k, dim=1).indices
        target = candidates[:, 0].clone()
        r_tot = torch.zeros_like(x0)
        active = torch.ones(x0.shape[0], dtype=torch.bool, device=x0.device)
        shape = (-1, *([1] * (x0.dim() - 1)))
        for _ in range(self.deepfool_max_iter):
            idx = active.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            point = (x0[idx] + r_tot[idx]).requires_grad_(True)
            out = self.model(point)
            true = out.gather(1, y[idx, None]).squeeze(1)
            best_pert = torch.full((idx.numel(),), float("inf"), device=x0.device)
            best_w = torch.zeros_like(point)
            best_cls = target[idx].clone()
            for c in range(k):
                cls = candidates[idx, c]
                f_k = out.gather(1, cls[:, None]).squeeze(1) - true
                (w_k,) = torch.autograd.grad(f_k.sum(), point, retain_graph=c < k - 1)
                w_k = self._sanitize_grad(w_k)
                norm = w_k.reshape(idx.numel(), -1).norm(dim=1)
                pert = f_k.detach().abs() / norm.clamp_min(1e-12)
                closer = pert < best_pert
                best_pert = torch.where(closer, pert, best_pert)
                best_w[closer] = w_k[closer]
                best_cls = torch.where(closer, cls, best_cls)
            step = best_pert.clamp_min(_MIN_STEP).nan_to_num(_MIN_STEP)
            r_tot[idx] += step.view(shape) * normalize_l2(best_w)
            with torch.no_grad():
                pred = self.model(x0[idx] + (1 + self.overshoot) * r_tot[idx]).argmax(dim=1)
            done = pred != y[idx]
            target[idx] = torch.where(done, pred, best_cls)
            active[idx[done]] = False
        point = (x0 + r_tot).requires_grad_(True)
        out = self.model(point)
        diff = out.gather(1, target[:, None]) - out.gather(1, y[:, None])
        (normal,) = torch.autograd.grad(diff.sum(), point)
        normal = normalize_l2(self._sanitize_grad(normal))
        return normal, x0 + self.lambda_ * r_tot


def linear_solver(x0: Tensor, normal: Tensor, point: Tensor) -> Tensor:
    """SparseFool's box-constrained L1 solver for the hyperplane ``{v: normal . (v - point) = 0}``.

    From ``x0``, change one coordinate at a time, largest |normal| first, by the amount that
    would reach the plane (plus a small overshoot), clipping to [0, 1]; stop per example once
    the side of the plane flips or the coordinates run out. Sorting once replaces the
    reference code's repeated argmax, so a batch costs O(n d log d).
    """
    n = x0.shape[0]
    x = x0.reshape(n, -1).clone()
    nrm = normal.reshape(n, -1)
    f = ((x - point.reshape(n, -1)) * nrm).sum(dim=1)
    side = f.sign()
    beta = _BETA * side
    order = nrm.abs().argsort(dim=1, descending=True)
    rows = torch.arange(n, device=x.device)
    active = side != 0
    for t in range(x.shape[1]):
        j = order[:, t]
        n_j = nrm[rows, j]
        active = active & (n_j != 0)
        if not bool(active.any()):
            break
        old = x[rows, j]
        # Move towards the plane: against the current side, along sign(n_j).
        step = ((f + beta).abs() / n_j.abs().clamp_min(1e-30)).clamp_min(_MIN_STEP)
        new = (old - side * n_j.sign() * step).clamp(0.0, 1.0)
        new = torch.where(active, new, old)
        x[rows, j] = new
        f = f + n_j * (new - old)
        active = active & (f.sign() == side)
    return x.view_as(x0)
