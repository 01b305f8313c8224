"""``edlnet train`` and ``edlnet demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import command


@command("train", "train a model from a YAML config (or resume a run)")
def _train(p: argparse.ArgumentParser):
    p.add_argument("--config", help="YAML file (configs/*.yaml); omitted: the defaults")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set epochs=5 --set dl_options.lam=0.2",
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    p.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="KEY",
        help="with --resume: let --set change KEY of the run (repeatable); threads, log_every "
        "and device may change without it",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="with --resume: read an old checkpoints/last/train_state.pt as a full pickle "
        "(can run code: only for run folders you trust)",
    )
    p.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")

    def run(args) -> int:
        from .loop import train

        if args.resume and args.config:
            raise ValueError("--resume takes the run's own config.yaml; do not pass --config too")
        if (args.allow_change or args.trust_pickle) and not args.resume:
            raise ValueError("--allow-change and --trust-pickle apply to --resume RUN_DIR only")
        from .loop import TrainingDiverged

        try:
            run_dir = train(
                args.config,
                tuple(args.set),
                resume=args.resume,
                progress=not args.no_progress,
                allow_changes=tuple(args.allow_change),
                trust_pickle=args.trust_pickle,
            )
        except TrainingDiverged as e:  # every rank stops together: one line, exit status 1
            print(f"edlnet train: stopped: {e}", file=sys.stderr)
            return 1
        print(run_dir)
        return 0

    return run


@command("demo", "train and evaluate a small EDLNet and ResNet on the bundled CIFAR-10 sample")
def _demo(p: argparse.ArgumentParser):
    p.add_argument("--out", default="runs/demo", help="folder for the demo's runs and summary")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's epochs (both models)")
    p.add_argument("--n-examples", type=int, default=None, help="test images for the robustness evaluation")
    p.add_argument("--precision", default=None, choices=["fp32", "bf16"], help="training precision")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the demo's training config",
    )

    def run(args) -> int:
        from .demo import run_demo

        summary = run_demo(
            Path(args.out),
            epochs=args.epochs,
            n_examples=args.n_examples,
            precision=args.precision,
            overrides=tuple(args.set),
        )
        print(summary.read_text())
        return 0

    return run
