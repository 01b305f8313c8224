"""`edlnet demo` — the README's run command — runs end to end: trains a ResNet-10 and a
two-stage EDLNet-10 on the bundled sample, evaluates both, writes the summary."""

import json
import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "edlnet", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    models = [r["model"] for r in summary["rows"]]
    assert models == ["ResNet-10 (plain)", "EDLNet-10 (Vanilla→Elastic)"]
    for row in summary["rows"]:
        assert 0 <= row["worst_case"] <= row["clean"] <= 1
        assert row["attacks"] and row["checks"]
    assert "| EDLNet-10" in proc.stdout
    assert (out / "edlnet" / "eval" / "quick" / "results.json").exists()
