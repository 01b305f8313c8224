"""`edlnet demo` — the README's run command — runs end to end: trains a ResNet-10 and a
two-stage EDLNet-10 on the bundled sample, evaluates both, writes the summary.

The test shortens the run (``--epochs 2 --n-examples 40``: the same code path, both stages, every
attack and check of the ``quick`` suite): the full demo takes 4–7 minutes on a 2-core CPU, half
the suite's budget, and its numbers are a record (``benchmarks/results/demo*/``), not a test."""

import json
import subprocess
import sys

from edlnet.train.config import load_config
from edlnet.train.demo import demo_config_path


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "edlnet", "demo", "--out", str(out), "--epochs", "2", "--n-examples", "40"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    models = [r["model"] for r in summary["rows"]]
    assert models == ["ResNet-10 (plain)", "EDLNet-10 (Vanilla→Elastic)"]
    assert summary["n_examples"] == 40
    # --epochs keeps the two stages: Vanilla DL for the first epoch, Elastic DL after it
    assert (summary["config"]["epochs"], summary["config"]["switch_to_elastic_epoch"]) == (2, 1)
    for row in summary["rows"]:
        assert 0 <= row["worst_case"] <= row["clean"] <= 1
        assert row["attacks"] and row["checks"]
    assert "| EDLNet-10" in proc.stdout
    assert (out / "edlnet" / "eval" / "quick" / "results.json").exists()


def test_the_full_demo_is_the_documented_one():
    """What the README's run command trains when no option shortens it."""
    cfg = load_config(demo_config_path())
    assert (cfg.model, cfg.dl, cfg.epochs, cfg.switch_to_elastic_epoch) == ("resnet10", "vanilla", 8, 6)
    assert cfg.dataset == "cifar10-sample" and cfg.model_kwargs == {"width": 16}
