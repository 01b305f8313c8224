"""A 2-process gloo run (torchrun) keeps parameters identical across ranks, through the
two-stage switch, and writes one run folder."""
import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_run_keeps_ranks_identical(tmp_path):
    worker = Path(__file__).with_name("dist_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "--log-dir", str(tmp_path / "logs"), "--redirects", "3",
           str(worker), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode != 0:  # show what each rank printed, not just torchrun's summary
        logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((tmp_path / "logs").rglob("*.log")))
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{logs}\n{proc.stderr[-1500:]}")
    assert (tmp_path / "ranks_identical.txt").read_text().split() == ["True", "2"]
    run = tmp_path / "dist"
    assert (run / "checkpoints" / "last" / "model.safetensors").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
