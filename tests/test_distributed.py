"""torchrun: a 2-process gloo run keeps parameters identical across ranks, through the two-stage
switch, and writes one run folder; a NaN on one rank stops every rank and keeps the last good
checkpoint; sharded evaluation over 2 processes equals one process. And, without a GPU, the
CUDA-only branches: each rank on cuda:LOCAL_RANK, set before NCCL starts, collectives there."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import edlnet
from edlnet.train import distributed as D

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(tmp_path, *args, timeout=600):
    """Run ``args`` under torchrun with 2 CPU processes; on failure show every rank's log."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    logs = tmp_path / "logs"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        "--log-dir",
        str(logs),
        "--redirects",
        "3",
        *map(str, args),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:  # show what each rank printed, not just torchrun's summary
        text = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted(logs.rglob("*.log")))
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{text}\n{proc.stderr[-1500:]}")
    return proc


def test_two_process_gloo_run_keeps_ranks_identical(tmp_path):
    torchrun(tmp_path, HERE / "dist_worker.py", tmp_path)
    assert (tmp_path / "ranks_identical.txt").read_text().split() == ["True", "2"]
    run = tmp_path / "dist"
    assert (run / "checkpoints" / "last" / "model.safetensors").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_nan_on_one_rank_stops_every_rank_and_keeps_the_last_good_checkpoint(tmp_path):
    torchrun(tmp_path, HERE / "dist_nan_worker.py", tmp_path, timeout=300)  # a hang fails here
    for rank in (0, 1):
        outcome = (tmp_path / f"rank{rank}.txt").read_text()
        assert outcome.startswith("diverged:") and "on rank(s) [1] at epoch 2, step 1" in outcome, outcome
    assert "loss became nan" in (tmp_path / "rank1.txt").read_text()
    run = tmp_path / "nan"
    last = run / "checkpoints" / "last"
    assert json.loads((last / "manifest.json").read_text())["epoch"] == 1
    edlnet.load(last)
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1]
    assert not (run / "train_results.json").exists()


SUITE = """name: tiny
main: {norm: Linf, eps: 8/255}
batch_size: 3
entries:
  - {name: FGSM, attack: fgsm, eps: 8/255}
  - {name: PGD-3, attack: pgd, eps: 8/255, settings: {steps: 3}}
checks:
  large_eps: {steps: 3}
  more_steps: {steps: 4, restarts: 2, limit: 8}
  gradients: {n_probe: 4}
"""


def test_sharded_evaluation_over_two_processes_equals_one(tmp_path):
    pytest.importorskip("pyautoattack")
    run = tmp_path / "run"
    torch.manual_seed(0)
    edlnet.save(edlnet.create_model("resnet10", width=4, dl="elastic"), run / "checkpoints" / "best")
    (run / "config.yaml").write_text("dataset: cifar10-sample\n")
    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE)
    common = ["eval", run, "--suite", suite, "--n-examples", "10", "--device", "cpu", "--quiet"]
    torchrun(tmp_path, "-m", "edlnet", *common, "--out", tmp_path / "two")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    single = subprocess.run(
        [sys.executable, "-m", "edlnet", *map(str, common), "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "two"))
    assert two["world_size"] == 2 and one["world_size"] == 1
    for key in ("clean", "attacks", "worst_case", "per_example", "attacks_by_policy", "checks_passed"):
        assert one[key] == two[key], key
    assert [(c["name"], c["status"]) for c in one["checks"]] == [
        (c["name"], c["status"]) for c in two["checks"]
    ]


# -- CUDA-only branches, with CUDA faked ----------------------------------------------------------
@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", torch.device(d))))
    return calls


def test_rank_device_is_cuda_local_rank(fake_cuda):
    assert D.rank_device(3, "cuda") == torch.device("cuda", 3)
    assert D.rank_device(3, "cpu") == torch.device("cpu")
    assert D.resolve_device("auto") == torch.device("cuda", 2)
    assert D.resolve_device("cuda") == torch.device("cuda", 2)
    assert D.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert D.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="nproc_per_node=4"):
        D.rank_device(4, "cuda")


def test_without_cuda_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="use device=cpu"):
        D.resolve_device("cuda")
    with pytest.raises(ValueError, match="use device=cpu"):
        D.rank_device(0, "cuda")


def test_init_distributed_sets_the_rank_device_before_nccl(fake_cuda, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: fake_cuda.append(("init", backend)))
    monkeypatch.setattr(dist, "get_rank", lambda: 2)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    info = D.init_distributed(torch.device("cuda", 0))  # a cuda:0 from a config is overridden
    assert fake_cuda == [("set_device", torch.device("cuda", 2)), ("init", "nccl")]
    assert info.device == torch.device("cuda", 2) and info.local_rank == 2 and info.rank == 2
    assert D.compute_device(torch.device("cuda", 0), info) == torch.device("cuda", 2)

    seen = {}
    monkeypatch.setattr(
        dist, "broadcast_object_list", lambda box, src, device=None: seen.update(device=device)
    )
    D.broadcast_object("x", info)
    assert seen["device"] == torch.device("cuda", 2)
    monkeypatch.setattr(dist, "barrier", lambda device_ids=None: seen.update(barrier=device_ids))
    D.barrier(info)
    assert seen["barrier"] == [2]


def test_gloo_keeps_collectives_on_the_cpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    backends = []
    monkeypatch.setattr(dist, "init_process_group", lambda backend: backends.append(backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    info = D.init_distributed(torch.device("cpu"))
    assert backends == ["gloo"] and info.device == torch.device("cpu")


def test_evaluation_collectives_use_the_rank_device(fake_cuda, monkeypatch):
    from edlnet.evaluation import runner, shard

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda: "nccl")
    assert D.collective_device() == torch.device("cuda", 2)
    seen = {}
    monkeypatch.setattr(
        dist, "broadcast_object_list", lambda box, src, device=None: seen.update(bcast=device)
    )

    class Store:
        def prepare(self, fingerprint, restart):
            pass

    runner._prepare_store(Store(), {}, False, rank=0, world=2)
    assert seen["bcast"] == torch.device("cuda", 2)

    class Guard:
        def __init__(self, device):
            seen["current"] = torch.device(device)

        def __enter__(self):
            seen["inside"] = True

        def __exit__(self, *exc):
            seen["inside"] = False

    monkeypatch.setattr(torch.cuda, "device", Guard)

    def gather(boxes, obj):
        assert seen["inside"]  # staged on the rank's own current device
        boxes[:] = [obj, obj]

    monkeypatch.setattr(dist, "all_gather_object", gather)
    assert shard.gather_batch_results([], 2) == []
    assert seen["current"] == torch.device("cuda", 2)


def test_ddp_gets_the_rank_device_and_bookkeeping_stays_on_the_cpu(tmp_path, monkeypatch):
    from test_train import tiny_cfg

    from edlnet.train import loop

    trainer = loop.Trainer(tiny_cfg(tmp_path, epochs=1, switch_to_elastic_epoch=None), progress=False)
    seen = {}

    class FakeDDP(torch.nn.Module):
        def __init__(self, module, device_ids=None, output_device=None):
            super().__init__()
            seen.update(device_ids=device_ids, output_device=output_device)

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", FakeDDP)
    real_info, real_device = trainer.info, trainer.device
    trainer.info = D.DistInfo(3, 4, 1, torch.device("cuda", 1))
    trainer.device = torch.device("cuda", 1)
    trainer._wrap()
    assert seen == {"device_ids": [1], "output_device": 1}
    trainer.info, trainer.device = real_info, real_device

    reduced = []
    real_reduce = loop.all_reduce_sum
    monkeypatch.setattr(loop, "all_reduce_sum", lambda t, info: reduced.append(t) or real_reduce(t, info))
    trainer._start(None)
    trainer.ddp = trainer._wrap()
    trainer.train_epoch(0)
    loop.validate(trainer.model, trainer.data.x_val, trainer.data.y_val, trainer.cfg, trainer.info)
    assert len(reduced) == 2
    assert all(t.device.type == "cpu" and t.dtype == torch.float64 for t in reduced)  # MPS has no float64


def test_torchrun_processes_exit_without_finalization(monkeypatch):
    exits, destroyed = [], []
    monkeypatch.setattr(os, "_exit", lambda code: exits.append(code))
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "destroy_process_group", lambda: destroyed.append(True))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    D.exit_torchrun_process(0)  # not under torchrun: returns, nothing torn down
    assert exits == [] and destroyed == []
    monkeypatch.setenv("WORLD_SIZE", "2")
    D.exit_torchrun_process(0)
    assert exits == [0] and destroyed == [True]
    D.exit_torchrun_process(1)  # a failed rank must not wait for the others in a teardown
    assert exits == [0, 1] and destroyed == [True]
