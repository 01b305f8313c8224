"""``edlnet eval RUN_DIR|CHECKPOINT --suite NAME``: evaluate a saved model, write a record.

Writes ``results.json`` and ``results.md`` to ``RUN_DIR/eval/<suite>/`` (or ``--out``) and
prints the report. Under ``torchrun`` the examples are sharded across ranks (gloo on CPU);
an interrupted evaluation resumes when rerun with the same arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..cli import command


@command("eval", "measure clean and robust accuracy with a suite of attacks and gradient-masking checks")
def _eval(p: argparse.ArgumentParser):
    from .suite_parser import list_suites

    p.add_argument(
        "path",
        metavar="RUN_DIR|CHECKPOINT",
        help="a training run folder or a checkpoint folder written by edlnet.save",
    )
    p.add_argument(
        "--suite",
        default="quick",
        help=f"suite name ({', '.join(list_suites())}) or a suite YAML file (default quick)",
    )
    p.add_argument(
        "--n-examples", type=int, default=None, help="first N test images (default: the suite's n_examples)"
    )
    p.add_argument("--batch-size", type=int, default=None, help="default: the suite's batch_size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dataset",
        default=None,
        help="dataset name or path (default: the run's dataset; for a run trained on CIFAR-10 "
        "(JPEG), the pixel-exact first test images of the bundled cifar10-sample)",
    )
    p.add_argument("--data-root", default=None, help="where the dataset is (default: the run's)")
    p.add_argument("--out", default=None, help="eval folder (default RUN_DIR/eval/<suite>)")
    p.add_argument(
        "--surrogate",
        metavar="RUN_DIR|CHECKPOINT",
        default=None,
        help="plain model for the transfer check (skipped without one)",
    )
    p.add_argument(
        "--checkpoint",
        choices=["best", "last"],
        default="best",
        help="which checkpoint of a run folder (default best)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard partial results in the eval folder instead of resuming",
    )
    p.add_argument("--quiet", action="store_true", help="no per-attack log lines")

    def run(args: argparse.Namespace) -> int:
        try:
            return run_eval(args)
        except ImportError as e:  # the optional AutoAttack reference, mostly
            raise ValueError(str(e)) from None

    return run


def run_dir_of(path: Path, checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to (where ``eval/`` goes), else the checkpoint."""
    if (path / "checkpoints").is_dir():
        return path
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent
    return checkpoint


def _run_config(run_dir: Path) -> dict[str, Any]:
    import yaml

    path = run_dir / "config.yaml"
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


# Forms of CIFAR-10 whose test pixels are not the release's: evaluations of models trained on
# them default to the bundled pixel-exact first test images (RobustBench's convention). The
# official release (``cifar10``) is pixel-exact already and is kept.
_NOT_PIXEL_EXACT_CIFAR10 = {"cifar10jpeg"}


def evaluation_dataset(dataset: str | None, data_root: str | None, config: dict) -> tuple[str, str | None]:
    """The dataset an evaluation reads: ``--dataset`` if given; for a run trained on a
    re-encoded CIFAR-10 the bundled pixel-exact first test images; else the run's own."""
    if dataset:
        return dataset, data_root
    trained = str(config.get("dataset") or "cifar10-sample")
    if trained.lower().replace("-", "").replace("_", "") in _NOT_PIXEL_EXACT_CIFAR10:
        return "cifar10-sample", None
    return trained, data_root or config.get("data_root")


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from edlnet.checkpoint import load, resolve_checkpoint
    from edlnet.data import load_dataset
    from edlnet.train.distributed import compute_device, init_distributed, resolve_device

    from .report import markdown
    from .runner import evaluate
    from .suite_parser import load_suite

    suite = load_suite(args.suite)
    path = Path(args.path)
    checkpoint = resolve_checkpoint(path, args.checkpoint)
    run_dir = run_dir_of(path, checkpoint)
    config = _run_config(run_dir)
    dist_info = init_distributed(resolve_device(args.device))
    device = compute_device(resolve_device(args.device), dist_info)  # cuda:LOCAL_RANK under torchrun
    try:
        model = load(checkpoint, map_location=device)
        surrogate = None
        if args.surrogate:
            surrogate = load(resolve_checkpoint(Path(args.surrogate), args.checkpoint), map_location=device)
        dataset, root = evaluation_dataset(args.dataset, args.data_root, config)
        data = load_dataset(dataset, root)
        n = args.n_examples or suite.n_examples or 1000
        if n > data.x_test.shape[0]:
            raise ValueError(
                f"{data.name} has {data.x_test.shape[0]} test images; --n-examples {n} "
                "asks for more (use a smaller --n-examples or the full dataset)"
            )
        with torch.no_grad():
            n_out = model.eval()(data.x_test[:1].float().to(device) / 255).shape[1]
        if n_out != len(data.class_names):
            raise ValueError(
                f"the model predicts {n_out} classes but {data.name} has "
                f"{len(data.class_names)}; pass the dataset it was trained on with --dataset"
            )
        out = Path(args.out) if args.out else run_dir / "eval" / suite.name
        main = dist_info.is_main
        log = None if args.quiet or not main else (lambda line: print(line, flush=True))
        record = evaluate(
            model,
            data.x_test[:n],
            data.y_test[:n],
            suite=suite,
            batch_size=args.batch_size,
            seed=args.seed,
            surrogate=surrogate,
            out_dir=out,
            restart=args.restart,
            log=log,
            info={
                "dataset": data.name,
                "images": f"first {n} test images of {data.name}"
                + (" (pixel-exact)" if "jpeg" not in data.name.lower() else ""),
                "checkpoint": str(checkpoint),
                "run_dir": str(run_dir),
            },
        )
        if main:
            print(markdown(record))
            print(f"results: {out / 'results.json'}, {out / 'results.md'}")
            print(f"checks: {record['checks_summary']['line']}")
            if record["checks_passed"] is False:
                print("warning: gradient-masking checks failed; see the report", file=sys.stderr)
    finally:
        if dist_info.enabled:
            import torch.distributed as dist

            dist.destroy_process_group()
    return 0
