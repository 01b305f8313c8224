"""``edlnet eval`` on a tiny saved EDLNet, and ``benchmark`` (RobustBench's protocol)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import edlnet
from edlnet.cli import main
from edlnet.evaluation import benchmark

torch.set_num_threads(1)
pytest.importorskip("pyautoattack")


def test_eval_quick_suite_on_a_tiny_saved_model(tmp_path, capsys):
    run = tmp_path / "run"
    edlnet.save(edlnet.create_model("resnet10", width=4, dl="elastic"), run / "checkpoints" / "best")
    (run / "config.yaml").write_text("dataset: cifar10-sample\n")
    assert main(["eval", str(run), "--suite", "quick", "--n-examples", "16"]) == 0
    out = run / "eval" / "quick"
    printed = capsys.readouterr().out
    assert "# Robustness evaluation: suite `quick`" in printed and "## Gradient-masking checks" in printed
    record = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text().startswith("# Robustness evaluation")
    assert (out / "suite.yaml").exists()
    assert set(record["attacks"]) == {"FGSM", "PGD-10", "Square-100"}
    assert record["n_examples"] == 16 and record["seed"] == 0
    assert len(record["per_example"]["worst_case"]) == 16
    assert record["worst_case"] <= min(record["attacks"].values()) <= record["clean"]
    names = [c["name"] for c in record["checks"]]
    assert names == ["large_eps", "more_steps", "black_box", "transfer", "input_gradients",
                     "gradient_agreement", "budget_monotone", "autoattack_flags"]
    assert record["entries"]["PGD-10"]["attack_settings"]["policies"] == ["exact", "detached"]
    assert record["environment"]["torch"] == torch.__version__ and "git_commit" in record["environment"]
    assert all(s >= 0 for s in record["seconds"].values())
    # A rerun finds every attack finished and rebuilds the same record.
    assert main(["eval", str(run), "--suite", "quick", "--n-examples", "16", "--quiet"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["per_example"] == record["per_example"]


def test_eval_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing"), "--suite", "quick"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    edlnet.save(edlnet.create_model("resnet10", width=4), tmp_path / "ckpt")
    assert main(["eval", str(tmp_path / "ckpt"), "--suite", "nope"]) == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "ckpt"), "--n-examples", "5000"]) == 2
    assert "has 1000 test images" in capsys.readouterr().err


def test_benchmark_runs_autoattack_on_the_first_exact_test_images():
    from edlnet.data import load_dataset

    data = load_dataset("cifar10-sample")
    x, y = data.x_test[:8].float() / 255, data.y_test[:8]
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(50):  # memorize the 8 images, so AutoAttack has correct examples to attack
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    # 32/255: this small, flat model is still robust at 8/255 (it barely moved from zero).
    record = benchmark(model, n_examples=8, threat_model="Linf", eps="32/255", log=None)
    assert record["images"] == "first 8 test images" and record["eps_exact"] == "32/255"
    assert record["attacks"].keys() == {"AutoAttack Linf 32/255"}
    assert record["clean"] == 1.0 and record["worst_case"] == 0.0  # a linear model is not robust
    verdicts = {c["name"]: c["passed"] for c in record["checks"]}
    assert verdicts["black_box"] is None  # AutoAttack's own Square check covers it
    assert verdicts["autoattack_flags"] is True and verdicts["large_eps"] is True
    settings = record["entries"]["AutoAttack Linf 32/255"]["attack_settings"]
    assert settings["attack"]["version"] == "standard"
    with pytest.raises(ValueError, match="threat_model"):
        benchmark(model, threat_model="corruptions")
    with pytest.raises(ValueError, match="has 1000 test images"):
        benchmark(model, n_examples=2000)
