"""SIGKILL at seeded points all over a short run, then ``--resume``: the final weights, optimizer
state and metrics are bitwise those of the uninterrupted run.

Each attempt is a forked child (torch is imported once, so 24 attempts stay fast) that resumes
the run folder, or starts it when nothing is committed yet, and is killed with SIGKILL: either
by itself just before its k-th event (a rename, fsync or tree deletion of a checkpoint commit,
or an optimizer step: every distinct state the run folder can be left in), or by the test after
a seeded delay. Kill points alternate between "within the epoch being redone" and "within the
next one", so the kills spread over every epoch and every step of the commits."""

import json
import os
import random
import shutil
import signal
import time

import pytest
import torch

import edlnet
from edlnet.train import TrainConfig
from edlnet.train.loop import Trainer, train
from edlnet.train.resume import resumable
from edlnet.train.state import read_train_state

KILLS = 24
EPOCHS = 12
TIMING_KEYS = ("seconds", "images_per_s")

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


def _cfg(out):
    return TrainConfig(
        model="resnet10",
        model_kwargs={"width": 4},
        dl="vanilla",
        switch_to_elastic_epoch=6,
        epochs=EPOCHS,
        train_subset=96,
        val_size=32,
        test_subset=32,
        batch_size=32,
        val_attack_steps=0,
        lr=0.05,
        seed=0,
        threads=1,
        out_dir=str(out),
        name="run",
    )


def _hook(patch, on_event):
    """Call ``on_event(name)`` before every filesystem step of a commit and every optimizer step."""

    def wrap(fn, name):
        def wrapped(*args, **kwargs):
            on_event(name)
            return fn(*args, **kwargs)

        return wrapped

    for owner, name in (
        (os, "replace"),
        (os, "rename"),
        (os, "fsync"),
        (shutil, "rmtree"),
        (torch.optim.SGD, "step"),
    ):
        patch(owner, name, wrap(getattr(owner, name), name))


def _attempt(run, cfg):
    if resumable(run):
        train(resume=run, progress=False)
    else:
        Trainer(cfg, run_dir=run, progress=False).fit()


def _child(run, cfg, kill_at):
    """In a forked child: run one attempt, SIGKILLing itself before event ``kill_at``."""
    code = 1
    try:
        if kill_at:
            count = [0]

            def on_event(name):
                count[0] += 1
                if count[0] == kill_at:
                    with open(run.parent / "kill_points.txt", "a") as f:
                        f.write(name + "\n")
                    os.kill(os.getpid(), signal.SIGKILL)

            _hook(setattr, on_event)
        _attempt(run, cfg)
        code = 0
    except BaseException as e:
        with open(run.parent / "child_error.txt", "a") as f:
            f.write(f"{type(e).__name__}: {e}\n")
    finally:
        os._exit(code)


def _spawn(run, cfg, kill_at=0, delay=None, hang=120.0):
    """Fork one attempt; SIGKILL it after ``delay`` seconds if given. Returns its wait status.
    An attempt still running after ``hang`` seconds fails the test (instead of hanging it)."""
    pid = os.fork()
    if pid == 0:
        _child(run, cfg, kill_at)
    start = time.time()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        elapsed = time.time() - start
        if delay is not None and elapsed >= delay:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        if elapsed > hang:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"an attempt ran for more than {hang} s (hung?)")
        time.sleep(0.005)


def _committed(run):
    """Epochs committed so far (what a resume would start after)."""
    for name in ("last", "last.prev"):
        path = run / "checkpoints" / name / "manifest.json"
        if path.exists():
            return json.loads(path.read_text())["epoch"]
    return 0


def _metrics(run):
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the reference and the forked attempts compute alike
    try:
        events = [0]
        _hook(monkeypatch.setattr, lambda name: events.__setitem__(0, events[0] + 1))
        t0 = time.time()
        reference = Trainer(_cfg(tmp_path / "ref"), progress=False).fit()
        epoch_seconds = (time.time() - t0) / EPOCHS
        monkeypatch.undo()
        per_epoch = max(events[0] // EPOCHS, 2)

        rng = random.Random(14)
        cfg = _cfg(tmp_path / "killed")
        run = tmp_path / "killed" / "run"
        kills, killed_in = 0, []
        for i in range(KILLS):
            done = _committed(run)
            if i % 6 == 5:  # a kill at a wall-clock instant: startup, resume reading, mid-step
                status = _spawn(run, cfg, delay=rng.uniform(0, epoch_seconds))
            else:
                # behind schedule: a kill in the epoch after the redone one, else within it,
                # so the kills spread evenly over the run whatever the machine's speed
                behind = done < 1 + i * (EPOCHS - 2) // KILLS
                low, high = (per_epoch, 2 * per_epoch) if behind else (1, per_epoch)
                status = _spawn(run, cfg, kill_at=rng.randrange(low, high))
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
                kills += 1
                killed_in.append(done + 1)
            else:
                error = tmp_path / "killed" / "child_error.txt"
                assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
                    error.read_text() if error.exists() else status
                )
                break  # the run finished before this kill
        assert kills >= 20
        assert len(set(killed_in)) >= EPOCHS // 2, killed_in  # spread over the run
        points = set((tmp_path / "killed" / "kill_points.txt").read_text().split())
        assert {"step", "fsync", "replace"} <= points, points  # mid-training and mid-commit
        assert 0 < _committed(run) < EPOCHS  # and work is left for the last attempt
        assert _spawn(run, cfg) == 0, (tmp_path / "killed" / "child_error.txt").read_text()
    finally:
        torch.set_num_threads(threads)

    for name in ("last", "best"):
        a = edlnet.load(reference / "checkpoints" / name).state_dict()
        b = edlnet.load(run / "checkpoints" / name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    sa = read_train_state(reference / "checkpoints" / "last")
    sb = read_train_state(run / "checkpoints" / "last")
    for k, buf in sa["optimizer"]["state"].items():
        assert torch.equal(buf["momentum_buffer"], sb["optimizer"]["state"][k]["momentum_buffer"])
    assert all(torch.equal(sa["power_vectors"][k], sb["power_vectors"][k]) for k in sa["power_vectors"])
    assert _metrics(run) == _metrics(reference)
    ra, rb = (json.loads((r / "train_results.json").read_text()) for r in (reference, run))
    assert (ra["best_epoch"], ra["last_test_clean_acc"], ra["epochs_run"]) == (
        rb["best_epoch"],
        rb["last_test_clean_acc"],
        rb["epochs_run"],
    )
