"""Theorem 4.2 of the Elastic DL paper on real data: single-step influence functions of the
Vanilla, Robust and Elastic operators, checked by finite differences, and the same sensitivity
measured by finite differences through the real layer for n_steps = 0, 1, …, K (an open
question the theorem leaves: does the single-step picture hold for the unrolled iterations?).

Setting (per dictionary layer, float64). u is the layer's input inside the network for a clean
image, u' its input for the attacked image, Δ − x := d = u' − u the contamination direction.
With the layer's normalized dictionary Â, E = I − Â*Â and the layer's ε:

    P_vanilla(u) = E(u),  P_robust(u) = w ⊙ E(u),  P_elastic(u) = (β + (1−β)w) ⊙ E(u),
    w = 1/(2(|E(u)| + ε)),

the step-0 residual of RISTA (the "core part r_t" of the theorem), whose influence functions
IF(Δ; P, u) = d/dt P(u + t·d) at t = 0 are

    vanilla: E(d),  robust: 2εw² ⊙ E(d),  elastic: (β + 2(1−β)εw²) ⊙ E(d).

The paper's appendix ends its robust derivation with −2εw²: a sign slip (d/de of e/(2(|e|+ε))
is ε/(2(|e|+ε)²) = 2εw² > 0); the theorem's + sign is right and is what is checked here.
β is the layer's learned elastic β (sigmoid of its parameter) whatever its current mode.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..layers.dict_conv import DictConv2d, dict_layers
from ..models.capture import capture_layers
from ..tables import Table
from .base import (
    NEEDS_DICTIONARY_LAYERS,
    AnalysisContext,
    AnalysisResult,
    has_dictionary_layers,
    register_analysis,
)
from .layer_ops import configured, learned_beta, residual_operator
from .plotting import new_figure

MODES = ("vanilla", "robust", "elastic")


def operators(
    layer: DictConv2d, u: torch.Tensor, beta: float
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """P_mode as functions of the layer input (see the module docstring)."""
    eps = layer.eps

    def E(v: torch.Tensor) -> torch.Tensor:
        return residual_operator(layer, u, v)

    def w(v: torch.Tensor) -> torch.Tensor:
        return 0.5 / (E(v).abs() + eps)

    return {
        "vanilla": E,
        "robust": lambda v: w(v) * E(v),
        "elastic": lambda v: (beta + (1 - beta) * w(v)) * E(v),
    }


def closed_forms(layer: DictConv2d, u: torch.Tensor, d: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """Theorem 4.2's influence functions at u in the direction d, per mode."""
    eps = layer.eps
    e = residual_operator(layer, u, u)
    w = 0.5 / (e.abs() + eps)
    ed = residual_operator(layer, u, d)
    return {
        "vanilla": ed,
        "robust": 2 * eps * w.pow(2) * ed,
        "elastic": (beta + 2 * (1 - beta) * eps * w.pow(2)) * ed,
    }


def central_difference(
    fn: Callable[[torch.Tensor], torch.Tensor], u: torch.Tensor, d: torch.Tensor, h: float
) -> torch.Tensor:
    """(fn(u + h·d) − fn(u − h·d)) / 2h."""
    return (fn(u + h * d) - fn(u - h * d)) / (2 * h)


def per_example_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


@torch.no_grad()
def layer_influence(
    layer: DictConv2d, u: torch.Tensor, u_adv: torch.Tensor, h: float, max_steps: int
) -> tuple[dict, list[dict]]:
    """Closed forms vs finite differences (single step) and real-layer sensitivities
    (n_steps = 0..max_steps, every mode) for one layer; all in float64."""
    layer = copy.deepcopy(layer).double().eval()
    u, d = u.double(), (u_adv - u).double()
    beta = learned_beta(layer)
    d_norm = per_example_norm(d).clamp_min(1e-30)
    forms = closed_forms(layer, u, d, beta)
    ops = operators(layer, u, beta)
    row = {"beta": beta, "eps": layer.eps, "perturbation_l2": float(d_norm.mean())}
    for mode in MODES:
        fd = central_difference(ops[mode], u, d, h)
        err = per_example_norm(fd - forms[mode]) / per_example_norm(forms[mode]).clamp_min(1e-30)
        row[f"{mode}_gain"] = float((per_example_norm(forms[mode]) / d_norm).mean())
        row[f"{mode}_fd_rel_error"] = float(err.max())
    steps = []
    for mode in MODES:
        for n in range(max_steps + 1):
            with configured([layer], mode=mode, n_steps=n):
                fd = central_difference(layer.solve, u, d, h)
                secant = layer.solve(u + d) - layer.solve(u)
            steps.append(
                {
                    "mode": mode,
                    "n_steps": n,
                    "sensitivity": float((per_example_norm(fd) / d_norm).mean()),
                    "secant": float((per_example_norm(secant) / d_norm).mean()),
                }
            )
    return row, steps


def influence(
    model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, h: float = 1e-4, max_steps: int = 4
) -> tuple[list[dict], list[dict]]:
    """Rows of both tables for every dictionary layer of ``model``."""
    layers = dict_layers(model)
    if not layers:
        raise ValueError("influence functions need dictionary layers; the model has none")
    inputs = {}
    for key, images in (("clean", x), ("attacked", x_adv)):
        with torch.no_grad(), capture_layers(model) as records:
            model(images)
        inputs[key] = {name: records[name]["input"] for name, _ in layers}
    single, multi = [], []
    for name, layer in layers:
        row, steps = layer_influence(layer, inputs["clean"][name], inputs["attacked"][name], h, max_steps)
        single.append({"layer": name, **row})
        multi += [{"layer": name, **s} for s in steps]
    return single, multi


@register_analysis(
    "influence",
    help="Theorem 4.2 influence functions and finite-difference sensitivity vs n_steps",
    applies=has_dictionary_layers,
    needs=NEEDS_DICTIONARY_LAYERS,
    order=80,
)
def run(ctx: AnalysisContext) -> AnalysisResult:
    result = AnalysisResult("influence")
    s = ctx.settings
    source = ctx.target
    single, multi = influence(source.model, ctx.x, ctx.attacked(source).x_adv, s.fd_step, s.max_steps)
    meta = {**ctx.attack_meta(), "fd_step": s.fd_step, "max_steps": s.max_steps}
    result.tables.append(
        Table(
            name="influence_single_step",
            title=f"Theorem 4.2 influence functions — {source.label}",
            columns=[
                "layer",
                "beta",
                "eps",
                "perturbation_l2",
                "vanilla_gain",
                "robust_gain",
                "elastic_gain",
                "vanilla_fd_rel_error",
                "robust_fd_rel_error",
                "elastic_fd_rel_error",
            ],
            rows=single,
            notes=[
                "gain = mean over images of ‖IF(Δ; P, u)‖₂ / ‖d‖₂ with d = u' − u the change of "
                "the layer input under attack; IF in closed form: vanilla E(d), robust "
                "2εw²⊙E(d), elastic (β + 2(1−β)εw²)⊙E(d), E = I − Â*Â, w = 1/(2(|E(u)|+ε)).",
                "fd_rel_error = max over images of ‖finite difference − closed form‖ / "
                "‖closed form‖ (central differences in float64): the closed forms are checked on "
                "every layer.",
                "β is the layer's learned elastic β; ε the layer's ε.",
            ],
            meta=meta,
        )
    )
    result.tables.append(
        Table(
            name="influence_steps",
            title=f"Sensitivity of the real layer vs RISTA steps — {source.label}",
            columns=["layer", "mode", "n_steps", "sensitivity", "secant"],
            rows=multi,
            notes=[
                "sensitivity = mean over images of ‖(z(u + h·d) − z(u − h·d))/2h‖₂ / ‖d‖₂ where "
                "z is the layer's bias-free output (code × ‖A‖₂) with the given mode and "
                "n_steps; n_steps = 0 is the plain convolution.",
                "secant = ‖z(u') − z(u)‖₂ / ‖d‖₂: the same for the whole attack, not infinitesimally.",
            ],
            meta=meta,
        )
    )
    result.figures["influence"] = _figure(single, multi, source.label)
    result.captions["influence"] = (
        "Theorem 4.2: single-step influence per layer (left) and "
        "finite-difference sensitivity of the real layer vs n_steps "
        "(right)"
    )
    return result


def _figure(single: list[dict], multi: list[dict], label: str):
    fig, axes = new_figure(1, 2, size=(5.0, 3.5))
    left, right = axes[0]
    idx = range(len(single))
    for mode in MODES:
        left.plot(idx, [r[f"{mode}_gain"] for r in single], marker="o", markersize=3, label=mode)
    left.set_xticks(list(idx), [r["layer"] for r in single], rotation=90, fontsize=6)
    left.set_ylabel("‖IF‖ / ‖d‖")
    left.set_yscale("log")
    left.set_title("single-step influence (closed form)")
    left.legend(fontsize=7)
    for mode in MODES:
        rows = [r for r in multi if r["mode"] == mode]
        steps = sorted({r["n_steps"] for r in rows})
        per_step = [[r["sensitivity"] for r in rows if r["n_steps"] == n] for n in steps]
        mean = [sum(v) / len(v) for v in per_step]
        right.plot(steps, mean, marker="o", markersize=3, label=mode)
        right.fill_between(steps, [min(v) for v in per_step], [max(v) for v in per_step], alpha=0.15)
    right.set_xlabel("n_steps (RISTA updates after z₀)")
    right.set_ylabel("‖dz‖ / ‖d‖ (finite differences)")
    right.set_yscale("log")
    right.set_title("real layer: mean over layers (band: min–max)")
    right.legend(fontsize=7)
    fig.suptitle(f"Influence functions — {label}")
    return fig
