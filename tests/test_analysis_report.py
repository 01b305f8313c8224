"""A tiny two-stage run folder through ``edlnet analyze`` and ``edlnet report``: the run-file
analyses (curves, β) against metrics.jsonl and the checkpoint, and a report that has every
section and embeds every image."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import edlnet
from edlnet.analysis import analysis_names, read_table
from edlnet.analysis.run_files import switch_epoch
from edlnet.cli import main
from edlnet.records import read_jsonl, write_json
from edlnet.train import TrainConfig, train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs")
    return train(
        TrainConfig(
            model="resnet10",
            model_kwargs={"width": 4},
            dl="vanilla",
            switch_to_elastic_epoch=1,
            epochs=2,
            train_subset=128,
            val_size=32,
            test_subset=32,
            batch_size=32,
            val_attack_steps=1,
            out_dir=str(out),
        ),
        progress=False,
    )


@pytest.fixture(scope="module")
def analysed(run_dir) -> Path:
    code = main(
        [
            "analyze",
            str(run_dir),
            "--which",
            "last",
            "--what",
            "all",
            "--n-images",
            "3",
            "--attack-steps",
            "1",
            "--max-steps",
            "1",
            "--lams",
            "0,0.2",
            "--noises",
            "clean",
            "gaussian:0.1",
            "--threads",
            "1",
            "--compare",
            str(run_dir / "checkpoints" / "best"),
        ]
    )
    assert code == 0
    return run_dir / "analysis"


def test_analyze_all_writes_every_applicable_analysis(analysed):
    index = json.loads((analysed / "index.json").read_text())
    # Every registered analysis either ran or was skipped as not applicable, in the registry's
    # order; the built-in ones that need dictionary layers or a run folder ran.
    names = analysis_names()
    assert sorted([*index["analyses"], *index["skipped"]]) == sorted(names)
    assert list(index["analyses"]) == [n for n in names if n in index["analyses"]]
    assert {"convergence", "embeddings", "noise-recovery", "betas", "curves", "influence"} <= set(
        index["analyses"]
    )
    assert "pursuit" in index["skipped"]
    for entry in index["analyses"].values():
        folder = analysed / entry["folder"]
        for png in entry["figures"]:
            assert (folder / png).stat().st_size > 1000
        for table in entry["tables"]:
            assert read_table(folder / table).rows
            assert (folder / table).with_suffix(".md").read_text().startswith("### ")


def test_curves_and_betas_come_from_the_files(run_dir, analysed):
    records = read_jsonl(run_dir / "metrics.jsonl")
    assert switch_epoch(records) == 2
    curves = read_table(analysed / "curves" / "training_curves.json")
    assert curves.meta["switch_epoch"] == 2
    assert curves.column("val_clean_acc") == [r["val_clean_acc"] for r in records]
    assert curves.column("mode") == ["vanilla", "elastic"]
    epochs = read_table(analysed / "betas" / "betas_epochs.json")
    assert epochs.rows[1]["stem.0"] == records[1]["betas"]["stem.0"]
    final = read_table(analysed / "betas" / "betas_final.json")
    model = edlnet.load(run_dir / "checkpoints" / "last")
    assert {r["layer"]: r["beta"] for r in final.rows} == pytest.approx(edlnet.betas(model))
    assert all(r["mode"] == "elastic" for r in final.rows)


def test_report_has_every_section_and_embeds_images(run_dir, analysed, tmp_path):
    write_json(
        run_dir / "eval" / "quick" / "results.json",
        {
            "clean": 0.25,
            "worst_case": 0.0,
            "attacks": {"pgd-exact": 0.0, "pgd-detached": 0.125},
            "checks": [
                {"name": "finite gradients", "passed": True, "detail": "0 of 8 non-finite"},
                {"name": "eps sweep to zero", "passed": False, "detail": "0.1 at 1.0"},
                # Current records carry a status: a skipped check is not a passed one.
                {"name": "transfer", "status": "skipped", "passed": None, "detail": "not run: no surrogate"},
            ],
        },
    )
    bench_dir = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "--width",
                "4",
                "--batch",
                "1",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--layers-list",
                "0,2",
                "--threads",
                "1",
                "--out",
                str(bench_dir),
            ]
        )
        == 0
    )
    out = tmp_path / "rep" / "report.md"
    assert main(["report", str(run_dir), str(bench_dir), "--out", str(out)]) == 0
    md = out.read_text()
    for section in (
        "# EDLNet report",
        "### Configuration",
        "### Training curves",
        "### β per layer",
        "### Evaluation",
        "#### Suite quick",
        "### Analyses",
        "#### convergence",
        "#### influence",
        "## Timing (Table 7)",
        "Forward time (ms) next to the paper's Table 7",
    ):
        assert section in md, section
    assert "1 FAILED" in md and "| pgd-detached | 0.125 |" in md
    assert "| eps sweep to zero | FAILED | 0.1 at 1.0 |" in md
    assert "| transfer | skipped | not run: no surrogate |" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 10
    for link in links:
        assert (out.parent / link).exists(), link
    html = out.with_suffix(".html").read_text()
    assert html.count("data:image/png;base64,") == len(links)
    assert "<table>" in html and "<h2>Run " in html
    # Numbers come from the files: the last epoch's validation accuracy appears as recorded.
    last = read_jsonl(run_dir / "metrics.jsonl")[-1]
    assert f"{last['val_clean_acc']:.4g}" in md


def test_user_errors_name_the_fix(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a run folder" in capsys.readouterr().err


def test_unknown_analysis_and_inapplicable_one(run_dir, capsys):
    assert main(["analyze", str(run_dir), "--what", "frobnicate", "--n-images", "1"]) == 2
    assert "choose from" in capsys.readouterr().err
    assert (
        main(
            [
                "analyze",
                str(run_dir),
                "--what",
                "pursuit",
                "--n-images",
                "1",
                "--out",
                str(run_dir / "tmp-analysis"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "needs a pursuit network" in err and "analyze: pursuit ..." not in err
    assert not (run_dir / "tmp-analysis").exists()
