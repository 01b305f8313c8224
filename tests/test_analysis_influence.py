"""Theorem 4.2 on real layer inputs: closed forms vs finite differences and exact derivatives
(jvp), and the multi-step sensitivity through the real layer."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import jvp

import edlnet
from edlnet.analysis import influence as inf
from edlnet.analysis.layer_ops import learned_beta, residual_operator
from edlnet.data import load_dataset


@pytest.fixture(scope="module")
def layer_inputs():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = edlnet.create_model("resnet10", width=4, dl="elastic", beta=0.3)
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 32, 32))
    model.eval()
    data = load_dataset("cifar10-sample")
    x = data.x_test[:3].float() / 255
    signs = torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(1)))
    x_adv = (x + 8 / 255 * signs).clamp(0, 1)
    name, layer = edlnet.dict_layers(model)[1]
    with edlnet.capture_layers(model) as rec, torch.no_grad():
        model(x)
        u = rec[name]["input"]
        model(x_adv)
        u_adv = rec[name]["input"]
    return model, x, x_adv, layer, u, u_adv


def test_closed_forms_are_the_derivatives(layer_inputs):
    _, _, _, layer, u, u_adv = layer_inputs
    layer = copy.deepcopy(layer).double()
    u, d = u.double(), (u_adv - u).double()
    beta = learned_beta(layer)
    assert beta == pytest.approx(0.3, abs=1e-6)
    forms = inf.closed_forms(layer, u, d, beta)
    ops = inf.operators(layer, u, beta)
    for mode in inf.MODES:
        _, exact = jvp(ops[mode], (u,), (d,))  # the true directional derivative
        assert torch.allclose(forms[mode], exact, rtol=1e-9, atol=1e-12), mode
        fd = inf.central_difference(ops[mode], u, d, 1e-4)
        assert (fd - exact).norm() / exact.norm() < 1e-5
    # Written out: robust IF = +2εw²·E(d), elastic = β·E(d) + (1−β)·robust (the + sign).
    e = residual_operator(layer, u, u)
    w = 0.5 / (e.abs() + layer.eps)
    ed = residual_operator(layer, u, d)
    assert torch.allclose(forms["robust"], 2 * layer.eps * w**2 * ed)
    assert torch.allclose(forms["elastic"], beta * ed + (1 - beta) * forms["robust"])
    assert (forms["robust"] * ed >= 0).all()


def test_influence_tables_and_real_layer_sensitivity(layer_inputs):
    model, x, x_adv, layer, u, u_adv = layer_inputs
    single, multi = inf.influence(model, x, x_adv, h=1e-4, max_steps=2)
    layers = edlnet.dict_layers(model)
    assert [r["layer"] for r in single] == [n for n, _ in layers]
    assert len(multi) == len(layers) * 3 * 3
    for r in single:
        for mode in inf.MODES:
            assert r[f"{mode}_fd_rel_error"] < 1e-4
    # The row of layer 1 equals a direct computation of ‖IF‖/‖d‖.
    row = single[1]
    lay = copy.deepcopy(layer).double()
    d = (u_adv - u).double()
    with torch.no_grad():
        forms = inf.closed_forms(lay, u.double(), d, learned_beta(lay))
    gain = (forms["elastic"].flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1)).mean()
    assert row["elastic_gain"] == pytest.approx(float(gain), rel=1e-9)
    # n_steps = 1 sensitivity through the real layer equals the exact jvp of layer.solve.
    # (jvp needs an autograd-traced layer: the reference implementation where there is a choice.)
    reference = {"impl": "reference"} if "impl" in lay.config() else {}
    lay.configure(mode="robust", n_steps=1, **reference)
    _, dz = jvp(lay.solve, (u.double(),), (d,))
    exact = (dz.flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1)).mean()
    got = [r for r in multi if r["layer"] == row["layer"] and r["mode"] == "robust" and r["n_steps"] == 1][0]
    assert got["sensitivity"] == pytest.approx(float(exact), rel=1e-4)
    # n_steps = 0 is the convolution: the same for every mode.
    zero = {r["mode"]: r["sensitivity"] for r in multi if r["layer"] == row["layer"] and r["n_steps"] == 0}
    assert zero["vanilla"] == pytest.approx(zero["elastic"]) == pytest.approx(zero["robust"])
    # The analysed layer itself is untouched.
    assert layer.mode == "elastic" and layer.n_steps == 2 and layer.weight.dtype == torch.float32
