"""Sharding over ranks and resuming: results never depend on how the work was split."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from edlnet.evaluation import ResumeError, evaluate, load_suite, merge_batch_results, run_shard
from edlnet.evaluation import shard as shard_module
from edlnet.evaluation.batch_result import BatchResult
from edlnet.evaluation.check_plan import check_entries
from edlnet.evaluation.runner import CLEAN

torch.set_num_threads(1)
pytest.importorskip("pyautoattack")  # Square runs through the reference implementation

SUITE = {
    "name": "shards",
    "main": {"norm": "Linf", "eps": "8/255"},
    "entries": [
        {"name": "FGSM", "attack": "fgsm", "eps": "8/255"},
        {"name": "PGD-3", "attack": "pgd", "eps": "8/255", "settings": {"steps": 3}},
        {"name": "Square", "attack": "square", "eps": "8/255", "settings": {"n_queries": 20}},
        {"name": "noise", "corruption": "gaussian_noise", "severity": 5},
    ],
    "checks": {
        "large_eps": {"steps": 3},
        "more_steps": {"steps": 4, "restarts": 2, "limit": 7},
        "gradients": {"n_probe": 8},
    },
}


class PolicyDependentGradient(nn.Module):
    """Identity in value; the backward pass is sign-flipped under "detached", so the two
    reweighting-gradient policies give different attacks."""

    def __init__(self) -> None:
        super().__init__()
        self.w_grad = "exact"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.w_grad == "exact" else 2 * x.detach() - x


def model_and_data(n: int = 10):
    g = torch.Generator().manual_seed(0)
    lin = nn.Linear(3 * 4 * 4, 10)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 0.3)
        lin.bias.zero_()
    model = nn.Sequential(PolicyDependentGradient(), nn.Flatten(), lin).eval()
    x = torch.rand(n, 3, 4, 4, generator=g)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    y[0] = (y[0] + 1) % 10  # one clean mistake: attacks must skip it and count it as broken
    return model, x, y


def merged_json(results, entries, n, batch_size):
    merged = merge_batch_results(results, entries, n, batch_size)
    return json.dumps(
        {k: [v.robust, v.by_policy, v.values] for k, v in merged.items()}, default=str, sort_keys=True
    )


def test_sharded_results_equal_unsharded():
    model, x, y = model_and_data()
    suite = load_suite(SUITE)
    entries = [CLEAN, *suite.entries, *check_entries(suite)]
    kw = dict(batch_size=3, seed=4)
    single = run_shard(model, x, y, entries, **kw)
    reference = merged_json(single, entries, len(x), 3)
    for world in (2, 3):
        results = [
            r
            for rank in range(world)
            for r in run_shard(model, x, y, entries, rank=rank, world_size=world, **kw)
        ]
        assert merged_json(results, entries, len(x), 3) == reference
    merged = json.loads(reference)
    assert merged["PGD-3"][0][0] is False  # the clean mistake is not robust
    assert set(merged["PGD-3"][1]) == {"exact", "detached"}
    assert merged["check/more-steps"][0][7:] == [None] * 3  # beyond the check's limit
    # Cascaded check attacks run only on the examples every white-box attack before them at
    # the main budget (FGSM, PGD-3) left robust, batch by batch on every rank; the others are
    # recorded as broken, and values["ran"] says which ones the check attacked itself.
    alive = [bool(a and b) for a, b in zip(merged["FGSM"][0], merged["PGD-3"][0])]
    assert 0 < sum(alive) < len(x)  # both kinds of example occur
    more = merged["check/more-steps"][0]  # None beyond its limit: no say
    after_more = [a and (m is None or m) for a, m in zip(alive, more)]
    for name, limit, before in (("check/more-steps", 7, alive), ("check/square", len(x), after_more)):
        robust, _, values = merged[name]
        assert values["ran"] == [before[i] if i < limit else None for i in range(len(x))], name
        assert all(robust[i] is False for i in range(limit) if not before[i]), name


def test_a_missing_shard_is_an_error():
    model, x, y = model_and_data()
    entries = [CLEAN]
    results = run_shard(model, x, y, entries, batch_size=3, seed=0, rank=0, world_size=2)
    with pytest.raises(RuntimeError, match="missing for batches"):
        merge_batch_results(results, entries, len(x), 3)


def test_resume_skips_finished_batches_and_gives_the_same_record(tmp_path, monkeypatch):
    model, x, y = model_and_data()
    model.train()  # evaluate must not leave it in eval mode
    first = evaluate(model, x, y, suite=SUITE, batch_size=3, seed=4, out_dir=tmp_path, log=None)
    assert model.training and model[0].w_grad == "exact"
    partial = tmp_path / "partial"
    pgd_files = [p for p in partial.glob("PGD-3-*.jsonl")]
    assert len(pgd_files) == 1
    pgd_files[0].unlink()  # an attack that never finished
    fgsm = next(partial.glob("FGSM-*.jsonl"))
    fgsm.write_text(fgsm.read_text() + '{"entry": "FGSM", "bat')  # a torn last line

    calls: list[str] = []
    real = shard_module.run_entry_on_batch

    def spy(entry, *args, **kwargs):
        calls.append(entry.name)
        return real(entry, *args, **kwargs)

    monkeypatch.setattr(shard_module, "run_entry_on_batch", spy)
    second = evaluate(model, x, y, suite=SUITE, batch_size=3, seed=4, out_dir=tmp_path, log=None)
    assert calls == ["PGD-3"] * 4  # only the lost attack ran again
    assert second["per_example"] == first["per_example"]
    assert second["attacks"] == first["attacks"] and second["checks"] == first["checks"]
    assert json.loads((tmp_path / "results.json").read_text())["attacks"] == first["attacks"]

    with pytest.raises(ResumeError, match="seed"):
        evaluate(model, x, y, suite=SUITE, batch_size=3, seed=5, out_dir=tmp_path, log=None)
    third = evaluate(model, x, y, suite=SUITE, batch_size=3, seed=5, out_dir=tmp_path, log=None, restart=True)
    assert third["seed"] == 5


def test_batch_results_keep_the_partial_file_format():
    result = BatchResult(
        entry_name="PGD-3", batch=1, start=3, stop=6, robust=[True, None, False], seconds=0.5
    )
    data = result.to_json()
    assert list(data)[:2] == ["entry", "batch"] and data["entry"] == "PGD-3"  # files of earlier runs resume
    assert BatchResult.from_json(json.loads(json.dumps(data))) == result
    with pytest.raises(TypeError):
        BatchResult.from_json({"batch": 1})
