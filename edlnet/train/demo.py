"""``edlnet demo``: a complete small run on the bundled CIFAR-10 sample.

1. trains a narrow plain ResNet-10 (the baseline, and the surrogate for transfer attacks);
2. trains the same network as an EDLNet, two-stage (Vanilla DL, then Elastic DL);
3. evaluates both with the ``quick`` robustness suite on the first test images;
4. writes ``summary.md`` and ``summary.json`` beside the two run folders.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

from .. import checkpoint as ckpt
from ..records import environment, write_json
from .config import TrainConfig, load_config
from .loop import Trainer


def demo_config_path() -> Path:
    return Path(str(resources.files("edlnet") / "configs" / "demo.yaml"))


def _eval(model, data, n_examples: int, surrogate, out_dir: Path) -> dict[str, Any]:
    from ..evaluation import evaluate

    x = data.x_test[:n_examples].float() / 255
    y = data.y_test[:n_examples]
    return evaluate(model, x, y, suite="quick", surrogate=surrogate, out_dir=out_dir)


def run_demo(
    out: Path,
    epochs: int | None = None,
    n_examples: int | None = None,
    precision: str | None = None,
    overrides: tuple[str, ...] = (),
) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sets = list(overrides) + [f"out_dir={out}"]
    if epochs is not None:
        sets.append(f"epochs={epochs}")
    if precision is not None:
        sets.append(f"precision={precision}")
    edl_cfg = load_config(demo_config_path(), tuple(sets) + ("name=edlnet",))
    if edl_cfg.switch_to_elastic_epoch is not None and edl_cfg.switch_to_elastic_epoch >= edl_cfg.epochs:
        # keep the two stages when --epochs shortens the run: switch after ~2/3 of it
        edl_cfg.switch_to_elastic_epoch = max(1, (2 * edl_cfg.epochs) // 3)
    plain_cfg = TrainConfig(
        **{
            **edl_cfg.to_dict(),
            "dl": None,
            "dl_options": {},
            "name": "resnet",
            "switch_to_elastic_epoch": None,
        }
    )
    n_examples = n_examples or 200
    rows = []
    runs: dict[str, Path] = {}
    for label, cfg in (("ResNet-10 (plain)", plain_cfg), ("EDLNet-10 (Vanilla→Elastic)", edl_cfg)):
        for old in (out / cfg.name,):
            if old.exists():
                import shutil

                shutil.rmtree(old)
        t0 = time.perf_counter()
        trainer = Trainer(cfg, run_dir=None)
        run_dir = trainer.fit()
        runs[label] = run_dir
        rows.append({"model": label, "run": str(run_dir), "train_seconds": time.perf_counter() - t0})
    data = trainer.data
    surrogate = ckpt.load(ckpt.resolve_checkpoint(runs["ResNet-10 (plain)"], "last"))
    for row in rows:
        model = ckpt.load(ckpt.resolve_checkpoint(row["run"], "last"))
        t0 = time.perf_counter()
        result = _eval(
            model,
            data,
            n_examples,
            None if "plain" in row["model"] else surrogate,
            Path(row["run"]) / "eval" / "quick",
        )
        row.update(
            eval_seconds=time.perf_counter() - t0,
            clean=result["clean"],
            attacks=result["attacks"],
            worst_case=result["worst_case"],
            checks=result["checks"],
            checks_summary=result["checks_summary"],
        )
    summary = {
        "dataset": data.name,
        "n_examples": n_examples,
        "rows": rows,
        "environment": environment(),
        "config": edl_cfg.to_dict(),
    }
    write_json(out / "summary.json", summary)
    path = out / "summary.md"
    path.write_text(_markdown(summary))
    return path


def _markdown(summary: dict[str, Any]) -> str:
    rows = summary["rows"]
    attacks = list(dict.fromkeys(k for r in rows for k in r["attacks"]))
    cfg = summary["config"]
    lines = [
        "# edlnet demo",
        "",
        f"{summary['dataset']}; model width {cfg['model_kwargs'].get('width')}, {cfg['epochs']} epochs "
        f"(EDLNet: Vanilla DL, Elastic DL from epoch {cfg['switch_to_elastic_epoch'] + 1}), "
        f"objective {cfg['objective']}, precision {cfg['precision']}; robustness on the first "
        f"{summary['n_examples']} test images (`quick` suite, fp32, eval mode).",
        "",
        "| model | clean | " + " | ".join(attacks) + " | worst case | checks | train s | eval s |",
        "|---|---|" + "---|" * len(attacks) + "---|---|---|---|",
    ]
    for r in rows:
        checks = r["checks_summary"]["line"]
        cells = [f"{r['attacks'][a]:.3f}" if a in r["attacks"] else "–" for a in attacks]
        lines.append(
            f"| {r['model']} | {r['clean']:.3f} | "
            + " | ".join(cells)
            + f" | {r['worst_case']:.3f} | {checks} | {r['train_seconds']:.0f} | {r['eval_seconds']:.0f} |"
        )
    lines += ["", "Runs: " + ", ".join(f"`{r['run']}`" for r in rows), ""]
    return "\n".join(lines)
