"""Deep pursuit: reconstruction error per iteration, frame potential and mutual coherence
against a direct computation from the global dictionary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import edlnet
from edlnet.analysis import AnalysisContext, ModelSource, Settings
from edlnet.analysis import pursuit_metrics as pm
from edlnet.analysis.runner import write_result


def _pursuit(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = edlnet.create_model(name, widths=(4, 4, 4), n_iters=2)
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 32, 32))
    return model.eval()


def test_frame_metrics_against_direct_gram():
    torch.set_num_threads(1)
    model = _pursuit("deep_pursuit_residual")
    errors, frame = pm.pursuit_metrics(model, torch.rand(3, 3, 32, 32), probe_size=6)
    assert errors.shape == (3, 7)  # (iterations + 1, layers): stem + 3 stages × 2 layers
    B = model.global_dictionary((6, 6)).detach().double()
    cols = B / B.norm(dim=0, keepdim=True)
    G = cols.T @ cols
    n, m = G.shape[0], B.shape[0]
    assert frame["atoms"] == n and frame["signal_dim"] == m
    assert frame["frame_potential"] == pytest.approx(float((G**2).sum()), rel=1e-4)
    off = G - torch.eye(n, dtype=G.dtype)
    assert frame["mutual_coherence"] == pytest.approx(float(off.abs().max()), rel=1e-4)
    assert frame["frame_potential"] >= frame["frame_potential_bound"] * (1 - 1e-6)
    assert frame["mutual_coherence"] >= frame["coherence_welch_bound"]


def test_pursuit_analysis_writes_tables_and_figure(tmp_path):
    torch.set_num_threads(1)
    models = [_pursuit(n) for n in ("layered_basis_pursuit", "deep_pursuit_residual")]
    sources = [ModelSource(n, m, Path("none"), None, {}) for n, m in zip(("L-BP", "DP-res"), models)]
    x = torch.rand(3, 3, 32, 32)
    ctx = AnalysisContext(
        sources[0],
        sources[1:],
        x,
        torch.zeros(3, dtype=torch.long),
        tuple(map(str, range(10))),
        Settings(probe_size=6),
        tmp_path,
    )
    result = pm.run(ctx)
    entry = write_result(result, tmp_path / "pursuit")
    assert (tmp_path / "pursuit" / "pursuit.png").stat().st_size > 1000
    assert entry["tables"] == ["pursuit_reconstruction.json", "pursuit_frame.json"]
    rec = result.tables[0]
    errors = models[1].reconstruction_errors(x)
    rows = [r for r in rec.rows if r["model"] == "DP-res"]
    assert len(rows) == errors.shape[0] == 3
    for t, r in enumerate(rows):
        for j in range(errors.shape[1]):
            assert r[f"layer_{j + 1}"] == pytest.approx(float(errors[t, j]), rel=1e-5)
    frame = {r["model"]: r for r in result.tables[1].rows}
    assert frame["L-BP"]["method"] == "layered" and frame["DP-res"]["method"] == "deep"


def test_not_a_pursuit_network_is_a_clear_error():
    with pytest.raises(ValueError, match="not a pursuit network"):
        pm.pursuit_metrics(edlnet.create_model("resnet10", width=4), torch.rand(1, 3, 32, 32))
