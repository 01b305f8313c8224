"""Configs and run folders written before ``objective_options`` keep loading and resuming: each old
flat objective key moves to its new place by the rule of ``edlnet.train.legacy``, with one
FutureWarning that names it, and a resumed old run folder is not a changed run."""

import warnings
from pathlib import Path

import pytest
import torch
import yaml
from test_train import tiny_cfg

import edlnet
from edlnet.train import ConfigError, load_config, train
from edlnet.train.legacy import OLD_OBJECTIVE_FIELDS, new_key
from edlnet.train.loop import Trainer
from edlnet.train.resume import config_changes

ROOT = Path(__file__).resolve().parents[1]
# a config.yaml written by the code before objective_options (committed record, never modified)
OLD_RUN_CONFIG = ROOT / "benchmarks" / "results" / "reproduce" / "cpu" / "fgsm-vanilla-s0" / "config.yaml"
OLD_DEFAULTS = {"trades_beta": 6.0, "mart_beta": 6.0, "hat_gamma": 0.5, "hat_beta": 3.0, "hat_h": 2.0}


def _load(*args, **kw):
    """load_config and the FutureWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config(*args, **kw)
    return cfg, [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


def _old_form(cfg_dict: dict) -> dict:
    """A new-form config dict written as the old code wrote it: every objective's flat keys."""
    old = {k: v for k, v in cfg_dict.items() if k != "objective_options"}
    old.update({**OLD_DEFAULTS, "hat_std_model": None})
    for key, value in cfg_dict["objective_options"].items():
        flat = next(
            k for k, (obj, opt) in OLD_OBJECTIVE_FIELDS.items() if obj == cfg_dict["objective"] and opt == key
        )
        old[flat] = value
    return old


@pytest.mark.parametrize(
    "old,objective,options",
    [
        ({"trades_beta": 2.0}, "trades", {"beta": 2.0}),
        ({"mart_beta": 3.0}, "mart", {"beta": 3.0}),
        (
            {"hat_gamma": 0.25, "hat_beta": 1.0, "hat_h": 1.5, "hat_std_model": "ckpt"},
            "hat",
            {"gamma": 0.25, "beta": 1.0, "h": 1.5, "std_model": "ckpt"},
        ),
    ],
)
def test_old_keys_move_to_objective_options_with_one_warning(tmp_path, old, objective, options):
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"objective": objective, **old}))
    cfg, notes = _load(path)
    assert {k: cfg.objective_options[k] for k in options} == options
    assert len(notes) == 1 and str(path) in notes[0]
    for key, (_, option) in ((k, OLD_OBJECTIVE_FIELDS[k]) for k in old):
        assert f"{key} -> objective_options.{option}" in notes[0]
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump({"objective": objective, "objective_options": options}))
    assert _load(new) == (cfg, [])  # the same config, and the new form warns nothing


def test_old_keys_of_other_objectives_are_dropped_and_named():
    cfg, notes = _load(OLD_RUN_CONFIG)
    assert cfg.objective == "pgd_at" and cfg.objective_options == {}
    assert len(notes) == 1
    assert "trades_beta, mart_beta, hat_gamma, hat_beta, hat_h, hat_std_model dropped" in notes[0]


def test_the_last_assignment_wins_old_key_or_new():
    base = ["objective=trades"]
    assert _load(None, [*base, "trades_beta=2", "objective_options.beta=3"])[0].objective_options == {
        "beta": 3
    }
    assert _load(None, [*base, "objective_options.beta=3", "trades_beta=2"])[0].objective_options == {
        "beta": 2
    }
    assert _load(None, ["trades_beta=2", "objective_options={}", *base])[0].objective_options == {"beta": 6.0}
    # the objective is the final one, wherever it was set
    assert _load(None, ["trades_beta=2", "objective=mart"])[0].objective_options == {"beta": 6.0}
    with pytest.raises(ConfigError, match="trades_beta is a single value"):
        load_config(None, ["trades_beta.x=1"])
    assert new_key("trades_beta", "trades") == "objective_options.beta"
    assert new_key("trades_beta", "mart") == "trades_beta" and new_key("lr", "trades") == "lr"


def test_committed_old_run_folders_load_as_their_study_configs():
    """The reproduction study's committed arm folders hold old-form config.yaml files (arms
    trained before objective_options) and new-form ones; each is the same config as the
    study's (new-form) arm, so resuming them changes nothing."""
    import importlib.util
    import time

    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    study = reproduce.Study("cpu", None, time.time() + 60)
    folders = sorted((ROOT / study.study["runs_dir"]).glob("*/config.yaml"))
    old_form = 0
    for path in folders:
        stored, notes = _load(path)
        old_form += bool(notes)
        assert config_changes(stored, study.config(path.parent.name)) == {}, path
    assert old_form, "no old-form run folder left to test the conversion on"
    for scale in ("cpu", "paper"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the committed studies use the current form
            s = reproduce.Study(scale, None, time.time() + 60)
            for arm in s.arms:
                s.config(arm)


def test_an_old_run_folder_resumes_bitwise_and_is_not_a_change(tmp_path):
    kw = dict(epochs=2, switch_to_elastic_epoch=None, objective="trades", objective_options={"beta": 2.0})
    full = Trainer(tiny_cfg(tmp_path / "full", **kw), progress=False).fit()
    part = Trainer(tiny_cfg(tmp_path / "part", **kw), progress=False).fit(stop_after=1)
    stored = yaml.safe_load((part / "config.yaml").read_text())
    (part / "config.yaml").write_text(yaml.safe_dump(_old_form(stored), sort_keys=False))
    # the converted form of an old key is the same setting: not a change, no --allow-change needed
    with pytest.warns(FutureWarning, match="trades_beta -> objective_options.beta"):
        resumed = train(resume=part, overrides=("objective_options.beta=2.0",), progress=False)
    assert not (part / "config_changes.jsonl").exists()
    a = edlnet.load(full / "checkpoints" / "last").state_dict()
    b = edlnet.load(resumed / "checkpoints" / "last").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a real change is refused under its new name, and allowed under its old one too
    with pytest.raises(ConfigError, match="--allow-change objective_options.beta"):
        train(resume=part, overrides=("trades_beta=3",), progress=False)
    with pytest.warns(FutureWarning):
        train(resume=part, overrides=("trades_beta=3",), allow_changes=("trades_beta",), progress=False)
    change = yaml.safe_load((part / "config_changes.jsonl").read_text())
    assert change["changes"] == {"objective_options.beta": {"old": 2.0, "new": 3}}


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path):
    from edlnet.train.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text("l2_penalty: 1e-5\nobjective: trades\nobjective_options: {beta: 6e0}\n")
    cfg = load_config(path)
    assert cfg.l2_penalty == 1e-5 and cfg.objective_options["beta"] == 6.0
    path.write_text("l2_penalty: lots\n")
    with pytest.raises(ConfigError, match="l2_penalty must be a number, got 'lots'"):
        load_config(path)
