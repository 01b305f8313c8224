"""Training state files: exact round trip without pickle, old ``train_state.pt`` folders still
resume, and a crafted pickle in a run folder is refused, not executed."""

import json
import math
import random
import shutil

import numpy as np
import pytest
import torch
from test_train import tiny_cfg

import edlnet
from edlnet.checkpoint import CheckpointError
from edlnet.train.loop import Trainer, train
from edlnet.train.state import (
    LEGACY_STATE,
    STATE_JSON,
    STATE_TENSORS,
    decode,
    encode,
    read_train_state,
    write_train_state,
)


def test_encoding_round_trips_rng_states_and_optimizer_structure(tmp_path):
    random.seed(3)
    random.random()
    np.random.seed(5)
    np.random.normal()  # a cached Gaussian in the state
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(3))], lr=0.1, momentum=0.9)
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "optimizer": opt.state_dict(),
        "best": -math.inf,
        "nan": math.nan,
        "tiny": 5e-324,
        "pi": math.pi,
        "__odd_key": 1,
        "nested": {(1, 2): [None, True, 7]},
        "np_int": np.int64(4),
    }
    write_train_state(tmp_path, state)
    assert {p.name for p in tmp_path.iterdir()} == {STATE_JSON, STATE_TENSORS}
    json.loads((tmp_path / STATE_JSON).read_text())  # strict JSON: no NaN/Infinity literals
    back = read_train_state(tmp_path)
    assert back["python"] == state["python"]
    random.setstate(back["python"])
    a = [random.random() for _ in range(3)]
    random.setstate(state["python"])
    assert a == [random.random() for _ in range(3)]
    np_state = back["numpy"]
    assert np_state[0] == "MT19937" and np.array_equal(np_state[1], state["numpy"][1])
    assert np_state[1].dtype == state["numpy"][1].dtype and tuple(np_state[2:]) == tuple(state["numpy"][2:])
    np.random.set_state(np_state)
    b = np.random.normal(size=3)
    np.random.set_state(state["numpy"])
    assert np.array_equal(b, np.random.normal(size=3))
    assert torch.equal(back["torch"], state["torch"])
    assert back["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert torch.equal(
        back["optimizer"]["state"][0]["momentum_buffer"], state["optimizer"]["state"][0]["momentum_buffer"]
    )
    assert (
        back["best"] == -math.inf
        and math.isnan(back["nan"])
        and back["tiny"] == 5e-324
        and back["pi"] == math.pi
    )
    assert back["__odd_key"] == 1 and back["nested"] == {(1, 2): [None, True, 7]}
    assert back["np_int"] == 4 and isinstance(back["np_int"], np.int64)
    with pytest.raises(TypeError, match="cannot store"):
        encode({"f": lambda: 0}, {})
    assert decode(encode((1, [2.5]), {}), {}) == (1, [2.5])


def _legacy_run(tmp_path, extra_line: bool):
    """A run folder as edlnet wrote it before this format: ``checkpoints/last`` with
    ``train_state.pt`` (torch.save of the state dict, NumPy RNG state inside), no manifest, no
    metrics copy, written file by file."""
    run = Trainer(tiny_cfg(tmp_path / "old", epochs=3, switch_to_elastic_epoch=1), progress=False).fit(
        stop_after=2
    )
    last = run / "checkpoints" / "last"
    state = read_train_state(last)
    torch.save(state, last / LEGACY_STATE)
    for name in (STATE_JSON, STATE_TENSORS, "manifest.json", "metrics.jsonl"):
        (last / name).unlink()
    shutil.rmtree(run / "checkpoints" / "last.prev")
    if extra_line:  # the old order: weights written, then killed after a later epoch's line
        with open(run / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"epoch": 3, "train_loss": 0.0, "images_per_s": 1.0}) + "\n")
    return run


def test_old_run_folder_with_train_state_pt_resumes_exactly(tmp_path):
    full = Trainer(tiny_cfg(tmp_path / "full", epochs=3, switch_to_elastic_epoch=1), progress=False).fit()
    run = _legacy_run(tmp_path, extra_line=True)
    resumed = train(resume=run, progress=False)
    a = edlnet.load(full / "checkpoints" / "last").state_dict()
    b = edlnet.load(resumed / "checkpoints" / "last").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = [json.loads(x) for x in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]  # the stray epoch-3 line was dropped, then rewritten
    assert lines[2]["train_loss"] != 0.0
    assert (resumed / "checkpoints" / "last" / STATE_JSON).exists()  # new commits use the new format


class _WritesAMarker:
    """Unpickling this creates a file: what a malicious checkpoint would do (worse)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_crafted_pickle_in_a_run_folder_is_not_executed(tmp_path):
    run = _legacy_run(tmp_path, extra_line=False)
    marker = tmp_path / "pwned"
    state_file = run / "checkpoints" / "last" / LEGACY_STATE
    torch.save({"epoch": 1, "payload": _WritesAMarker(marker)}, state_file)
    with pytest.raises(CheckpointError) as info:
        train(resume=run, progress=False)
    assert str(state_file) in str(info.value) and "--trust-pickle" in str(info.value)
    assert not marker.exists()
    # the same file, read as a full pickle when the user vouches for it, does run its code:
    # the test above is not vacuous
    read_train_state(state_file.parent, trust_pickle=True)["payload"].close()
    assert marker.exists()


def test_new_format_ignores_a_stray_pickle(tmp_path):
    run = Trainer(
        tiny_cfg(tmp_path, epochs=1, switch_to_elastic_epoch=None, val_size=0), progress=False
    ).fit()
    marker = tmp_path / "pwned"
    torch.save({"payload": _WritesAMarker(marker)}, run / "checkpoints" / "last" / LEGACY_STATE)
    state = read_train_state(run / "checkpoints" / "last")
    assert state["epoch"] == 0 and not marker.exists()
