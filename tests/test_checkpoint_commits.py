"""Checkpoint commits: a damaged ``last`` falls back to ``last.prev``, an interrupted commit is
finished, readers (``resolve_checkpoint``) fall back too, and ``--resume`` refuses config
changes that are not asked for by name."""

import json
import os

import pytest
import torch
from test_train import tiny_cfg

import edlnet
from edlnet.checkpoint import CheckpointError, resolve_checkpoint
from edlnet.train import ConfigError, commits
from edlnet.train.loop import Trainer, train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 3-epoch run (reference) and the same run stopped after 2 epochs (copied per test)."""
    root = tmp_path_factory.mktemp("runs")
    kw = dict(epochs=3, switch_to_elastic_epoch=1, val_attack_steps=0)
    full = Trainer(tiny_cfg(root / "full", **kw), progress=False).fit()
    part = Trainer(tiny_cfg(root / "part", **kw), progress=False).fit(stop_after=2)
    return full, part


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def _same_weights(a, b):
    sa, sb = edlnet.load(a).state_dict(), edlnet.load(b).state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_commit_keeps_the_previous_checkpoint_and_a_manifest(runs):
    _, part = runs
    ck = part / "checkpoints"
    names = {p.name for p in ck.iterdir()}
    assert {"last", "last.prev", "best"} <= names <= {"last", "last.prev", "best", "best.prev"}
    assert json.loads((ck / "last" / "manifest.json").read_text())["epoch"] == 2
    assert json.loads((ck / "last.prev" / "manifest.json").read_text())["epoch"] == 1
    assert commits.verify(ck / "last") is None
    history = commits.read_metrics(ck / "last" / "metrics.jsonl")
    assert [r["epoch"] for r in history] == [1, 2]
    assert (part / "metrics.jsonl").read_text() == (ck / "last" / "metrics.jsonl").read_text()


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_damaged_last_falls_back_to_prev_and_says_so(runs, tmp_path, capsys, damage):
    full, part = runs
    run = _copy(part, tmp_path / "run")
    weights = run / "checkpoints" / "last" / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-5] ^= 0xFF
        weights.write_bytes(bytes(data))
    else:
        (run / "checkpoints" / "last" / "manifest.json").write_text("{not json")
    resumed = train(resume=run, progress=False)
    err = capsys.readouterr().err
    assert (
        f"{run / 'checkpoints' / 'last'} is unusable" in err and str(run / "checkpoints" / "last.prev") in err
    )
    assert _same_weights(full / "checkpoints" / "last", resumed / "checkpoints" / "last")
    assert [r["epoch"] for r in commits.read_metrics(resumed / "metrics.jsonl")] == [1, 2, 3]
    assert list((run / "checkpoints").glob("last.corrupt-*"))  # kept for inspection


def test_kill_between_the_two_renames_is_finished_on_resume(runs, tmp_path, capsys):
    full, part = runs
    run = _copy(part, tmp_path / "run")
    ck = run / "checkpoints"
    # what a kill during epoch 2's commit, after `last -> last.prev` and before
    # `.last.tmp -> last`, leaves: epoch 1 in last.prev, a complete epoch 2 in .last.tmp
    os.replace(ck / "last", ck / ".last.tmp")
    with pytest.warns(UserWarning, match="last is missing"):
        assert resolve_checkpoint(run, "last") == ck / "last.prev"  # readers see the previous one
    resumed = train(resume=run, progress=False)
    assert "finished an interrupted checkpoint commit" in capsys.readouterr().err
    assert _same_weights(full / "checkpoints" / "last", resumed / "checkpoints" / "last")
    assert not (ck / ".last.tmp").exists()


def test_readers_fall_back_and_name_both(runs, tmp_path):
    _, part = runs
    run = _copy(part, tmp_path / "run")
    (run / "checkpoints" / "best" / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.warns(UserWarning, match="best is unusable"):
        got = resolve_checkpoint(run, "best")
    assert got.name in ("best.prev", "last")
    edlnet.load(got)
    for name in ("best", "best.prev", "last", "last.prev"):
        folder = run / "checkpoints" / name
        if folder.exists():
            (folder / "model.safetensors").write_bytes(b"\0")
    with pytest.raises(CheckpointError, match="is unusable"):
        resolve_checkpoint(run, "best")


def test_resume_refuses_changes_unless_named(runs, tmp_path):
    _, part = runs
    run = _copy(part, tmp_path / "run")
    with pytest.raises(ConfigError) as info:
        train(resume=run, overrides=("lr=0.2", "dl_options.lam=0.3", "threads=1"), progress=False)
    msg = str(info.value)
    assert "lr: 0.05 -> 0.2" in msg and "dl_options.lam" in msg and "--allow-change lr" in msg
    assert "threads" not in msg.split("(only")[0]
    with pytest.raises(ConfigError, match="dl_options.lam"):
        train(resume=run, overrides=("lr=0.2", "dl_options.lam=0.3"), allow_changes=("lr",), progress=False)
    resumed = train(
        resume=run,
        overrides=("epochs=4", "threads=1", "log_every=5"),
        allow_changes=("epochs",),
        progress=False,
    )
    assert [r["epoch"] for r in commits.read_metrics(resumed / "metrics.jsonl")] == [1, 2, 3, 4]
    change = json.loads((resumed / "config_changes.jsonl").read_text().splitlines()[0])
    assert change["changes"] == {"epochs": {"old": 3, "new": 4}} and change["resumed_at_epoch"] == 2
    assert "epochs: 4" in (resumed / "config.yaml").read_text()


def test_cli_flags(tmp_path, capsys):
    from edlnet.cli import main

    assert main(["train", "--allow-change", "lr"]) == 2
    assert "--resume RUN_DIR only" in capsys.readouterr().err


def test_a_run_killed_after_its_early_stop_does_not_train_on(tmp_path):
    cfg = tiny_cfg(
        tmp_path, epochs=8, switch_to_elastic_epoch=None, val_attack_steps=0, early_stop_patience=1
    )
    run = Trainer(cfg, progress=False).fit()
    epochs = [r["epoch"] for r in commits.read_metrics(run / "metrics.jsonl")]
    assert len(epochs) < 8  # it stopped early
    (run / "train_results.json").unlink()  # killed while finishing
    resumed = train(resume=run, progress=False)
    assert [r["epoch"] for r in commits.read_metrics(resumed / "metrics.jsonl")] == epochs
    assert json.loads((resumed / "train_results.json").read_text())["epochs_run"] == len(epochs)
