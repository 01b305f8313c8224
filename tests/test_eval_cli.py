"""``edlnet eval`` on a tiny saved EDLNet, and ``benchmark`` (RobustBench's protocol)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import edlnet
from edlnet.cli import main
from edlnet.evaluation import benchmark
from edlnet.evaluation.checks import CHECK_NAMES
from edlnet.evaluation.cli import evaluation_dataset

torch.set_num_threads(1)
pytest.importorskip("pyautoattack")


def test_eval_quick_suite_on_a_tiny_saved_model(tmp_path, capsys):
    run = tmp_path / "run"
    edlnet.save(edlnet.create_model("resnet10", width=4, dl="elastic"), run / "checkpoints" / "best")
    # Trained on re-encoded CIFAR-10 that is not on this machine: the evaluation defaults to
    # the bundled pixel-exact test images and never reads the run's dataset.
    (run / "config.yaml").write_text("dataset: cifar10-jpeg\ndata_root: /nonexistent/cifar10\n")
    assert main(["eval", str(run), "--suite", "quick", "--n-examples", "16"]) == 0
    out = run / "eval" / "quick"
    printed = capsys.readouterr().out
    assert "# Robustness evaluation: suite `quick`" in printed and "## Gradient-masking checks" in printed
    record = json.loads((out / "results.json").read_text())
    assert record["dataset"] == "CIFAR-10 sample" and "pixel-exact" in record["images"]
    assert (out / "results.md").read_text().startswith("# Robustness evaluation")
    assert (out / "suite.yaml").exists()
    assert set(record["attacks"]) == {"FGSM", "PGD-10"}  # black-box: the checks' Square-1000
    assert record["n_examples"] == 16 and record["seed"] == 0
    assert len(record["per_example"]["worst_case"]) == 16
    assert record["worst_case"] <= min(record["attacks"].values()) <= record["clean"]
    assert [c["name"] for c in record["checks"]] == list(CHECK_NAMES)
    assert {c["status"] for c in record["checks"]} <= {"passed", "failed", "skipped", "not applicable"}
    # No --surrogate: transfer is skipped, so robustness is never established.
    assert next(c for c in record["checks"] if c["name"] == "transfer")["status"] == "skipped"
    assert record["checks_passed"] is not True
    assert f"checks: {record['checks_summary']['line']}" in printed
    assert record["entries"]["PGD-10"]["attack_settings"]["policies"] == ["exact", "detached"]
    assert record["environment"]["torch"] == torch.__version__ and "git_commit" in record["environment"]
    assert all(s >= 0 for s in record["seconds"].values())
    # A rerun finds every attack finished and rebuilds the same record.
    assert main(["eval", str(run), "--suite", "quick", "--n-examples", "16", "--quiet"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["per_example"] == record["per_example"]


def test_evaluation_dataset_defaults_to_pixel_exact_test_images():
    # A re-encoded CIFAR-10 has other test pixels: use the bundled pixel-exact ones.
    for name in ("cifar10-jpeg", "CIFAR10_JPEG"):
        assert evaluation_dataset(None, None, {"dataset": name, "data_root": "/d"}) == (
            "cifar10-sample",
            None,
        )
    assert evaluation_dataset(None, None, {}) == ("cifar10-sample", None)
    assert evaluation_dataset(None, None, {"dataset": "cifar10-sample"})[0] == "cifar10-sample"
    # Another dataset is read from the run's own root; --dataset/--data-root always win.
    assert evaluation_dataset(None, None, {"dataset": "tinyimagenet", "data_root": "/d"}) == (
        "tinyimagenet",
        "/d",
    )
    assert evaluation_dataset("npz", "/x.npz", {"dataset": "cifar10-jpeg"}) == ("npz", "/x.npz")


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
    # AutoAttack standard runs once per policy without running Square twice: its white-box
    # part, then Square (5,000 queries) on what that left robust.
    settings = record["entries"]["AutoAttack Linf 32/255"]["attack_settings"]
    assert settings["white_box_part"] == ["apgd-ce", "apgd-t", "fab-t"]
    assert settings["policies"] == ["model"]  # no dictionary layers: the model's own gradients
    # each part with the standard version's own settings (not the reference's "custom" ones)
    assert settings["white_box:model"]["parts"] == ["apgd-ce", "apgd-t", "fab-t"]
    assert settings["white_box:model"]["version"] == "standard"
    assert settings["square"]["parts"] == ["square"] and settings["square"]["version"] == "standard"
    aa = record["autoattack_standard"]["AutoAttack Linf 32/255"]
    assert aa["accuracy"] == 0.0 and aa["n_examples"] == 8 and aa["policy"] == "model"
    assert record["robustbench"]["autoattack_standard"] == 0.0
    assert record["robustbench"]["worst_case"] == record["worst_case"] <= aa["accuracy"]
    assert record["robustbench"]["checks"] == record["checks_summary"]["line"]
    verdicts = {c["name"]: c["status"] for c in record["checks"]}
    # AutoAttack's own Square (5,000 queries) is the black-box check; no second Square runs.
    assert "check/square" not in record["entries"]
    black_box = next(c for c in record["checks"] if c["name"] == "black_box")
    assert black_box["status"] == "passed" and "its Square" in black_box["detail"], black_box
    assert black_box["n"] == 8  # all clean-correct examples are covered by AutoAttack's cascade
    assert verdicts["autoattack_flags"] == "passed" and verdicts["large_eps"] == "passed"
    assert verdicts["more_steps"] == "skipped" and verdicts["transfer"] == "skipped"
    assert record["checks_passed"] is None
    with pytest.raises(ValueError, match="threat_model"):
        benchmark(model, threat_model="corruptions")
    with pytest.raises(ValueError, match="has 1000 test images"):
        benchmark(model, n_examples=2000)
