"""The contract every registered analysis keeps, checked for each one in the registry, so a new
analysis module is tested here without editing this file: it applies to a tiny context that has
what the analyses need (dictionary layers, a run folder with per-epoch metrics, a pursuit
network among the models), runs through ``analyze`` and writes what its result names: PNG
figures, tables as JSON and Markdown, and an entry in the index the report reads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

import edlnet
from edlnet.analysis import (
    ANALYSES,
    AnalysisContext,
    ModelSource,
    Settings,
    analysis_names,
    analyze,
    register_analysis,
)
from edlnet.cli import _load_commands, build_parser
from edlnet.data import load_dataset
from edlnet.records import append_jsonl
from edlnet.registry import RegistryError, package_modules
from edlnet.tables import read_table

PNG = b"\x89PNG\r\n\x1a\n"


def _trained_once(model: torch.nn.Module) -> torch.nn.Module:
    model.train()
    with torch.no_grad():  # one training-mode pass: BN statistics and every ‖A‖₂ become known
        model(torch.rand(8, 3, 32, 32))
    return model.eval()


def _run_folder(root: Path, model: torch.nn.Module) -> Path:
    """A run folder as far as the analyses read it: the config and two epochs of metrics with
    a Vanilla→Elastic switch (the model itself is given to the context directly)."""
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: resnet10\ndataset: cifar10-sample\n")
    layers = [name for name, _ in edlnet.dict_layers(model)]
    for epoch, mode in ((1, "vanilla"), (2, "elastic")):
        record = {"epoch": epoch, "mode": mode, "lr": 0.1, "train_loss": 2.0, "val_clean_acc": 0.1 * epoch}
        append_jsonl(run / "metrics.jsonl", {**record, "betas": dict.fromkeys(layers, 0.5)})
    return run


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> AnalysisContext:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("contract")
    torch.manual_seed(0)
    target = _trained_once(edlnet.create_model("resnet10", width=4, dl="elastic"))
    torch.manual_seed(1)
    vanilla = _trained_once(edlnet.create_model("resnet10", width=4, dl="vanilla"))
    torch.manual_seed(2)
    pursuit = _trained_once(edlnet.create_model("deep_pursuit_residual", widths=(4, 4, 4), n_iters=1))
    run = _run_folder(root, target)
    data = load_dataset("cifar10-sample")
    sources = [
        ModelSource("elastic", target, run / "checkpoints" / "best", run, {}),
        ModelSource("vanilla", vanilla, Path("vanilla"), None, {}),
        ModelSource("DP-res", pursuit, Path("pursuit"), None, {}),
    ]
    settings = Settings(n_images=2, attack_steps=1, max_steps=1, lams=(0.0,), noises=("clean",), probe_size=6)
    x, y = data.x_test[:2].float() / 255, data.y_test[:2]
    return AnalysisContext(sources[0], sources[1:], x, y, data.class_names, settings, root / "analysis")


@pytest.mark.parametrize("name", analysis_names())
def test_every_registered_analysis_runs_and_writes_its_result(ctx, name):
    analysis = ANALYSES.get(name)
    assert analysis.help, f"analysis {name!r} needs a one-line help for the index and the report"
    assert analysis.applies(ctx), (
        f"analysis {name!r} does not apply to the contract context (it needs {analysis.needs}); "
        "give the context in tests/test_analysis_contract.py what it needs"
    )
    result = analyze(ctx, [name], log=False)[name]
    assert result.tables or result.figures, f"analysis {name!r} returned neither tables nor figures"
    entry = json.loads((ctx.out_dir / "index.json").read_text())["analyses"][name]
    assert entry["what"] == name and entry["help"] == analysis.help
    folder = ctx.out_dir / entry["folder"]
    assert entry["folder"] == result.name
    assert entry["figures"] == [f"{stem}.png" for stem in result.figures]
    assert set(entry["captions"]) <= set(entry["figures"])
    for png in entry["figures"]:
        data = (folder / png).read_bytes()
        assert data[:8] == PNG and len(data) > 1000, png
    assert entry["tables"] == [f"{t.name}.json" for t in result.tables]
    for table, written in zip(result.tables, entry["tables"]):
        again = read_table(folder / written)
        assert (again.name, again.columns, len(again.rows)) == (table.name, table.columns, len(table.rows))
        assert (folder / written).with_suffix(".md").read_text().startswith(f"### {table.title}")


def test_registry_order_is_the_command_line_and_run_order():
    _load_commands()
    names = analysis_names()
    assert sorted(names) == ANALYSES.names()
    orders = [ANALYSES.get(n).order for n in names]
    assert orders == sorted(orders)
    parser = build_parser()
    analyze_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "analyze"
    ]
    what = next(a for a in analyze_parser._actions if a.dest == "what")
    assert what.help == "analyses to run: " + ", ".join(names) + " or all (those that apply)"


def test_every_module_of_the_package_is_loaded():
    package = Path(edlnet.analysis.__file__).parent
    files = {p.stem for p in package.glob("*.py")} - {"__init__"}
    modules = package_modules(ANALYSES.package)
    assert {m.rpartition(".")[2] for m in modules} == files
    assert {ANALYSES.get(n).run.__module__ for n in analysis_names()} <= set(modules)


def test_registration_errors_name_the_problem():
    ANALYSES.load()
    with pytest.raises(RegistryError, match="registered twice"):
        register_analysis("convergence", help="another convergence")(lambda ctx: None)
    with pytest.raises(ValueError, match="no needs="):
        register_analysis("picky", help="only some models", applies=lambda ctx: False)
    assert "picky" not in ANALYSES
