"""Analyses that look inside dictionary layers, checked against direct computations:
convergence (Fig. 6), embedding difference (Fig. 5/4), perturbations (Fig. 7), noise recovery
(Table 12) and the test-time λ sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import edlnet
from edlnet.analysis import (
    AnalysisContext,
    ModelSource,
    Settings,
    convergence,
    embeddings,
    lambda_sweep,
    noise_recovery,
    perturbations,
)
from edlnet.analysis.runner import write_result
from edlnet.data import load_dataset
from edlnet.layers.conv_ops import dict_adjoint
from edlnet.layers.rista import rista
from edlnet.tables import read_table


def _model(mode: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = edlnet.create_model("resnet10", width=4, dl=mode)
    model.train()
    with torch.no_grad():  # one training-mode pass: BN statistics and every ‖A‖₂ become known
        model(torch.rand(8, 3, 32, 32))
    return model.eval()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> AnalysisContext:
    torch.set_num_threads(1)
    data = load_dataset("cifar10-sample")
    x, y = data.x_test[:4].float() / 255, data.y_test[:4]
    sources = [
        ModelSource(f"{m} model", _model(m, i), Path("none"), None, {})
        for i, m in enumerate(("elastic", "vanilla"))
    ]
    return AnalysisContext(
        sources[0],
        sources[1:],
        x,
        y,
        data.class_names,
        Settings(n_images=4, attack_steps=2, lams=(0.0, 0.3), noises=("clean", "gaussian:0.1")),
        tmp_path_factory.mktemp("analysis"),
    )


def _written(ctx: AnalysisContext, result) -> Path:
    folder = ctx.out_dir / result.name
    entry = write_result(result, folder)
    assert entry["figures"] and entry["tables"]
    for png in entry["figures"]:
        data = (folder / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return folder


def _first_layer_input(model, x):
    name, layer = edlnet.dict_layers(model)[0]
    with edlnet.capture_layers(model) as rec, torch.no_grad():
        model(x)
    return layer, rec[name]["input"]


def test_convergence_terms_match_rista(ctx):
    result = convergence.run(ctx)
    folder = _written(ctx, result)
    table = read_table(folder / "convergence.json")
    model = ctx.target.model
    layer, u = _first_layer_input(model, ctx.x)
    # Direct: RISTA on A/‖A‖₂ with the majorizing step the layer uses in elastic mode.
    beta = float(torch.sigmoid(layer.beta_logit.detach()))
    eta = 1.0 / (beta + (1 - beta) / (2 * layer.eps))
    with torch.no_grad():
        _, terms = rista(
            u,
            layer.weight / layer.dict_norm,
            n_steps=layer.n_steps,
            beta=beta,
            lam=layer.lam,
            step=eta,
            eps=layer.eps,
            stride=layer.stride,
            padding=layer.padding,
            return_terms=True,
        )
    rows = [
        r
        for r in table.rows
        if r["model"] == ctx.target.label and r["layer"] == "stem.0" and r["input"] == "clean"
    ]
    assert [r["step"] for r in rows] == list(range(layer.n_steps + 1))
    for r in rows:
        for key in ("total", "residual_l2_sq", "residual_l1", "code_l1"):
            assert r[key] == pytest.approx(float(getattr(terms, key)[r["step"]].mean()), rel=1e-5)
    # Both models, both inputs, every layer.
    n_layers = len(edlnet.dict_layers(model))
    assert len(table.rows) == 2 * 2 * n_layers * (layer.n_steps + 1)
    assert (folder / "convergence_1.png").exists()


def test_convergence_more_steps_restores_layers(ctx):
    model = ctx.target.model
    before = [m.config() for _, m in edlnet.dict_layers(model)]
    terms = convergence.layer_terms(model, ctx.x[:2], n_steps=5)
    assert all(t.total.shape == (6, 2) for t in terms.values())
    assert [m.config() for _, m in edlnet.dict_layers(model)] == before
    # Elastic RISTA with the majorizing step descends its (smoothed) objective; the Eq. 12
    # objective itself should at least end below where it starts on the first layer.
    first = terms["stem.0"].total.mean(1)
    assert first[-1] < first[0]


def test_embedding_difference_matches_manual_norm(ctx):
    result = embeddings.run(ctx)
    folder = _written(ctx, result)
    table = read_table(folder / "embedding_difference.json")
    assert (folder / "embedding_picture.png").exists()
    for source in ctx.sources:
        x_adv = ctx.attacked(source).x_adv
        outputs = {}
        for key, images in (("clean", ctx.x), ("adv", x_adv)):
            with edlnet.capture_layers(source.model) as rec, torch.no_grad():
                source.model(images)
            outputs[key] = rec
        name = "layer2.0.conv1"
        z, z2 = outputs["clean"][name]["output"], outputs["adv"][name]["output"]
        manual = ((z - z2).flatten(1).norm(dim=1) / z.flatten(1).norm(dim=1)).mean()
        rows = {r["layer"]: r for r in table.rows if r["model"] == source.label}
        assert rows[name]["mean"] == pytest.approx(float(manual), rel=1e-5)
        pixel = ((ctx.x - x_adv).flatten(1).norm(dim=1) / ctx.x.flatten(1).norm(dim=1)).mean()
        assert rows["input"]["mean"] == pytest.approx(float(pixel), rel=1e-5)
        assert rows["input"]["index"] == 0


def test_perturbation_statistics():
    delta = torch.zeros(2, 3, 4, 4)
    delta[0, 0, 0, 0] = 0.1
    delta[1] = -0.05
    stats = perturbations.perturbation_stats(delta, eps=0.1)
    assert stats["l1"] == pytest.approx((0.1 + 48 * 0.05) / 2)
    assert stats["linf"] == pytest.approx((0.1 + 0.05) / 2)
    assert stats["at_budget"] == pytest.approx(1 / 96)
    values = delta.flatten()
    c = values - values.mean()
    kurtosis = float((c**4).mean() / (c**2).mean() ** 2 - 3)
    assert stats["excess_kurtosis"] == pytest.approx(kurtosis, rel=1e-5)


def test_perturbations_table(ctx):
    result = perturbations.run(ctx)
    _written(ctx, result)
    rows = result.tables[0].rows
    assert [r["model"] for r in rows] == [s.label for s in ctx.sources]
    for s, r in zip(ctx.sources, rows):
        delta = ctx.attacked(s).x_adv - ctx.x
        assert r["linf"] <= 8 / 255 + 1e-6
        assert r["l2"] == pytest.approx(float(delta.flatten(1).norm(dim=1).mean()), rel=1e-5)


def test_noise_recovery_matches_direct_reconstruction(ctx):
    result = noise_recovery.run(ctx)
    _written(ctx, result)
    table = result.tables[0]
    assert [r["noise"].split(" ")[0] for r in table.rows] == ["random", "transfer", "adaptive"]
    model = ctx.target.model
    x_adv = ctx.attacked(ctx.target).x_adv
    layer, u = _first_layer_input(model, ctx.x)
    _, u_adv = _first_layer_input(model, x_adv)

    def recon(v):  # Â*(ẑ) with ẑ = output / ‖A‖₂, written out by hand
        with torch.no_grad():
            z_hat = layer(v) / layer.dict_norm
            return dict_adjoint(
                z_hat, layer.weight / layer.dict_norm, v.shape[-2:], layer.stride, layer.padding
            )

    std = model.normalize.std
    eps_hat = std * (recon(u_adv) - recon(u))
    err = (x_adv - ctx.x) - eps_hat
    row = table.rows[-1]
    assert row["units"] == "pixels"
    assert row["l2_mean"] == pytest.approx(float(err.flatten(1).norm(dim=1).mean()), rel=1e-4)
    assert row["l1_mean"] == pytest.approx(float(err.flatten(1).abs().sum(1).mean()), rel=1e-4)
    assert row["linf_mean"] == pytest.approx(float(err.flatten(1).abs().amax(1).mean()), rel=1e-4)


def test_lambda_sweep_matches_direct_accuracy_and_restores(ctx):
    result = lambda_sweep.run(ctx)
    _written(ctx, result)
    rows = [r for r in result.tables[0].rows if r["model"] == ctx.target.label]
    assert [r["lam"] for r in rows] == [0.0, 0.1, 0.3]  # the trained λ = 0.1 is added
    assert [r["trained"] for r in rows] == [False, True, False]
    model = ctx.target.model
    layers = [m for _, m in edlnet.dict_layers(model)]
    for m in layers:
        m.lam = 0.3
    with torch.no_grad():
        direct = float((model(ctx.x).argmax(1) == ctx.y).float().mean())
    for m in layers:
        m.lam = 0.1
    assert rows[2]["clean"] == pytest.approx(direct)
    assert all(m.lam == 0.1 for m in layers)
