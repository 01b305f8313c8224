"""The reproduction study's driver: a forked arm is bitwise the arm trained from scratch, arms
resume epoch by epoch, and the claims report is built from the records alone."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import torch
import yaml

from edlnet import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]


def _driver():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _study(tmp_path: Path) -> Path:
    study = {
        "scale": "test",
        "runs_dir": str(tmp_path / "runs"),
        "data_label": "bundled sample",
        "base": {
            "model": "resnet10",
            "model_kwargs": {"width": 4},
            "dataset": "cifar10-sample",
            "train_subset": 96,
            "val_size": 32,
            "test_subset": 16,
            "epochs": 3,
            "batch_size": 32,
            "lr": 0.05,
            "schedule": "step",
            "milestones": [2],
            "val_attack_steps": 1,
            "threads": 1,
            "dl_options": {"n_steps": 1},
        },
        "groups": {"fgsm": {"objective": "pgd_at", "attack_steps": 1, "attack_alpha": "10/255"}},
        "arms": [
            {
                "name": "fgsm-vanilla-s0",
                "group": "fgsm",
                "dl": "vanilla",
                "switch_to_elastic_epoch": None,
                "seed": 0,
            },
            {
                "name": "fgsm-elastic-s0",
                "group": "fgsm",
                "dl": "vanilla",
                "switch_to_elastic_epoch": 2,
                "seed": 0,
                "fork": {"from": "fgsm-vanilla-s0", "epoch": 2},
            },
            {
                "name": "fgsm-elastic-scratch",
                "group": "fgsm",
                "dl": "vanilla",
                "switch_to_elastic_epoch": 2,
                "seed": 0,
            },
        ],
        "evaluation": {},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_forked_arm_equals_the_arm_trained_from_scratch(tmp_path):
    reproduce = _driver()
    study = reproduce.Study(str(_study(tmp_path)), None, time.time() + 600)
    assert study.order(None)[:2] == ["fgsm-elastic-s0", "fgsm-vanilla-s0"]  # fork before parent
    assert study.train(None)
    runs = tmp_path / "runs"
    fork = yaml.safe_load((runs / "fgsm-elastic-s0" / "fork.json").read_text())
    assert fork["from"] == "fgsm-vanilla-s0" and fork["epoch"] == 2
    forked = ckpt.load(runs / "fgsm-elastic-s0" / "checkpoints" / "last").state_dict()
    scratch = ckpt.load(runs / "fgsm-elastic-scratch" / "checkpoints" / "last").state_dict()
    parent = ckpt.load(runs / "fgsm-vanilla-s0" / "checkpoints" / "last").state_dict()
    assert forked.keys() == scratch.keys()
    for key in forked:
        assert torch.equal(forked[key], scratch[key]), key
    # the parent went on in Vanilla DL after the fork: different weights, β untouched
    assert any(not torch.equal(parent[k], forked[k]) for k in parent if "beta" not in k)
    for name in ("fgsm-elastic-s0", "fgsm-elastic-scratch", "fgsm-vanilla-s0"):
        assert len(reproduce.read_jsonl(runs / name / "metrics.jsonl")) == 3
    # a second call finds everything done and trains nothing
    assert study.train(None)
    assert len(reproduce.read_jsonl(runs / "fgsm-vanilla-s0" / "metrics.jsonl")) == 3


def test_paired_bootstrap_and_verdicts():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import reproduce_report as report

    a = [True] * 30 + [False] * 70
    b = [True] * 60 + [False] * 40  # +30 points, the same images
    diff = report.paired_difference([(a, b), (a, b)])
    assert abs(diff["mean"] - 0.30) < 1e-12 and diff["low"] > 0.15 and diff["high"] < 0.45
    assert report.verdict(diff) == "reproduced"
    assert report.verdict(report.paired_difference([(b, a)])) == "not reproduced (opposite direction)"
    same = report.paired_difference([(a, a)])
    assert same["low"] == same["high"] == 0.0
    assert report.verdict(same) == "no difference at this scale"


def test_catastrophic_overfitting_guard():
    from edlnet.train.config import ConfigError, load_config
    from edlnet.train.loop import _catastrophic_overfitting

    cfg = load_config(overrides=("co_guard=0.5", "objective=pgd_at", "val_attack_steps=1"))
    assert _catastrophic_overfitting(cfg, {"val_robust_acc": 0.09}, best=0.20)  # collapse
    assert not _catastrophic_overfitting(cfg, {"val_robust_acc": 0.11}, best=0.20)  # noise
    assert not _catastrophic_overfitting(cfg, {"val_robust_acc": 0.0}, best=0.04)  # no level yet
    assert not _catastrophic_overfitting(cfg, {"val_clean_acc": 0.5}, best=0.20)  # no robust acc
    off = load_config(overrides=("objective=pgd_at",))
    assert not _catastrophic_overfitting(off, {"val_robust_acc": 0.0}, best=0.5)
    for bad in (("co_guard=1.5",), ("co_guard=0.5", "val_attack_steps=0")):
        try:
            load_config(overrides=bad)
        except ConfigError as e:
            assert "co_guard" in str(e)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_an_arm_folder_with_an_old_form_config_resumes(tmp_path):
    """Arm folders written before objective_options (flat trades_beta, ... in config.yaml, as the
    committed records under benchmarks/results/reproduce/ have) resume where they stopped and
    end as the arm trained without interruption."""
    import warnings

    reproduce = _driver()
    path = _study(tmp_path)
    study_dict = yaml.safe_load(path.read_text())
    study_dict["groups"] = {
        "trades": {"objective": "trades", "objective_options": {"beta": 2.0}, "attack_steps": 1}
    }
    study_dict["base"]["epochs"] = 2
    study_dict["arms"] = [
        {"name": "trades-a", "group": "trades", "dl": None, "seed": 0},
        {"name": "trades-b", "group": "trades", "dl": None, "seed": 0},
    ]
    path.write_text(yaml.safe_dump(study_dict))
    study = reproduce.Study(str(path), None, time.time() + 600)
    assert study.train_epochs("trades-b", 1)  # one epoch, then "stopped"
    run_b = tmp_path / "runs" / "trades-b"
    stored = yaml.safe_load((run_b / "config.yaml").read_text())
    options = stored.pop("objective_options")
    stored.update(trades_beta=options["beta"], mart_beta=6.0, hat_gamma=0.5, hat_beta=3.0, hat_h=2.0)
    stored["hat_std_model"] = None
    (run_b / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert study.train(None)
    assert len(reproduce.read_jsonl(run_b / "metrics.jsonl")) == 2
    a = ckpt.load(tmp_path / "runs" / "trades-a" / "checkpoints" / "last").state_dict()
    b = ckpt.load(run_b / "checkpoints" / "last").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert yaml.safe_load((run_b / "config.yaml").read_text())["trades_beta"] == 2.0  # record kept
