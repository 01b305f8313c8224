"""Command-line interface: ``edlnet <command> ...`` (also ``python -m edlnet``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .allocator import keep_freed_memory

COMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def command(name: str, help: str):
    """Register a subcommand: the decorated function adds arguments and returns the runner."""

    def deco(fn):
        COMMANDS[name] = (help, fn)
        return fn

    return deco


@command("models", "list the registered models")
def _models(p: argparse.ArgumentParser):
    def run(args) -> int:
        import edlnet

        print("\n".join(edlnet.list_models()))
        return 0

    return run


@command("datasets", "list the datasets load_dataset knows by name (the dataset table)")
def _datasets(p: argparse.ArgumentParser):
    def run(args) -> int:
        from edlnet.data import DATASETS

        for entry in DATASETS:
            classes = "? classes" if entry.num_classes is None else f"{entry.num_classes} classes"
            size = "?x?x?" if entry.image_size is None else "x".join(map(str, entry.image_size))
            print(f"{entry.name:<15} {classes:>11}  {size:<8} {entry.description}")
            print(f"{'':<37} labels: {entry.labels}")
        print("?: decided by the files. load_dataset also takes the path of a dataset in these formats.")
        return 0

    return run


@command("summary", "build a model, run one batch through it and print a summary")
def _summary(p: argparse.ArgumentParser):
    p.add_argument("name", nargs="?", default="resnet18")
    p.add_argument("--dl", default="elastic", choices=["none", "vanilla", "robust", "elastic"])
    p.add_argument(
        "--width", type=int, default=16, help="stem width, for models whose entry function takes width"
    )
    p.add_argument("--batch", type=int, default=8)

    def run(args) -> int:
        import inspect
        import time

        import torch

        import edlnet
        from edlnet.models import model_entry

        entry = model_entry(args.name)
        takes_width = "width" in inspect.signature(entry.build).parameters
        kw = {"width": args.width} if takes_width else {}
        model = edlnet.create_model(args.name, dl=None if args.dl == "none" else args.dl, **kw)
        x = torch.rand(args.batch, *entry.input_size)  # the input size the model is registered for
        t0 = time.perf_counter()
        out = model(x)
        out.logsumexp(1).mean().backward()
        dt = time.perf_counter() - t0
        n_params = sum(p.numel() for p in model.parameters())
        layers = edlnet.dict_layers(model)
        print(f"model {args.name} dl={args.dl}: {n_params:,} parameters, {len(layers)} dictionary layers")
        print(f"batch {tuple(x.shape)} -> logits {tuple(out.shape)}; forward+backward {dt:.2f} s")
        for name, m in layers[:3]:
            print(f"  {name}: {m.extra_repr()}")
        if len(layers) > 3:
            print(f"  ... and {len(layers) - 3} more")
        return 0

    return run


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="edlnet", description="Robust classifiers from dictionary-learning layers"
    )
    parser.add_argument("--version", action="version", version=f"edlnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, setup) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_run=setup(p))
    return parser


def main(argv: list[str] | None = None) -> int:
    _load_commands()
    args = build_parser().parse_args(argv)
    try:
        # every command trains, attacks or times networks: reuse freed activation memory
        # (no numerical effect; EDLNET_ALLOCATOR=system opts out)
        keep_freed_memory()
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:  # user errors: one clear line, no traceback wall
        print(f"edlnet {args.command}: error: {e}", file=sys.stderr)
        return 2


def _load_commands() -> None:
    """Import the modules that register further commands (train, demo, eval, ...)."""
    import importlib

    for mod in (
        "edlnet.train.cli",
        "edlnet.evaluation.cli",
        "edlnet.analysis.cli",
        "edlnet.bench.cli",
        "edlnet.report.cli",
    ):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


if __name__ == "__main__":
    sys.exit(main())
