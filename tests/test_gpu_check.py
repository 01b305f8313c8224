"""benchmarks/gpu_check.py: its CPU part passes here, a failing check fails the command loudly,
and a GPU that torch cannot use is an error, not a silent CPU run."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_cpu_part_runs_and_records_every_check(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--cpu-only", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    status = {c["name"]: c["status"] for c in record["checks"]}
    assert list(status) == [name for name, _ in gpu_check.CHECKS]  # none left out
    assert {n for n, s in status.items() if s == "skipped"} == {
        "no_host_sync",
        "compile_fullgraph",
        "torchrun_nccl",
    }
    assert all(
        s == "passed"
        for n, s in status.items()
        if n not in ("no_host_sync", "compile_fullgraph", "torchrun_nccl")
    )
    assert all(c["detail"] for c in record["checks"])  # every skip says why
    assert record["mode"] == "cpu-only" and record["gpu"] is None and record["passed"]
    md = (tmp_path / "gpu_check.md").read_text()
    assert md.startswith("# edlnet GPU check: PASSED") and "| train_and_resume | passed |" in md
    assert "no GPU checks ran" in capsys.readouterr().err


def test_a_failing_check_fails_the_command(gpu_check, tmp_path, monkeypatch, capsys):
    def broken(ctx):
        raise gpu_check.CheckFailed("fast path differs by 1e-3")

    monkeypatch.setattr(gpu_check, "CHECKS", [("fast_equals_reference_float64", broken)])
    assert gpu_check.main(["--cpu-only", "--out", str(tmp_path)]) == 1
    assert (
        "FAILED: fast_equals_reference_float64: CheckFailed: fast path differs by 1e-3"
        in capsys.readouterr().err
    )
    assert json.loads((tmp_path / "gpu_check.json").read_text())["passed"] is False


def test_a_gpu_torch_cannot_use_is_an_error(gpu_check, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "gpu_visible", lambda: "NVIDIA A100")
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "nvidia-smi sees a GPU (NVIDIA A100)" in capsys.readouterr().err
    assert gpu_check.main(["--require-gpu", "--out", str(tmp_path / "x")]) == 2
