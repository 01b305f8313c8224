"""``edlnet analyze``, ``edlnet bench`` and ``edlnet report``.

``edlnet bench --layers`` runs :mod:`edlnet.analysis.layer_bench` (single dictionary layers
and whole networks against the convolution floor), which adds its own options to ``bench``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..cli import command
from . import layer_bench


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,2,4, got {text!r}"
        ) from None


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0,0.1,0.2, got {text!r}"
        ) from None


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


@command("analyze", "the papers' analyses of a model: PNG figures and JSON/Markdown tables")
def _analyze(p: argparse.ArgumentParser):
    from .context import ANALYSIS_NAMES, DEFAULT_LAMS, DEFAULT_NOISES, Settings

    p.add_argument("target", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument(
        "--what",
        nargs="+",
        default=["all"],
        metavar="NAME",
        help="analyses to run: " + ", ".join(ANALYSIS_NAMES) + " or all (those that apply)",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="RUN_OR_CKPT",
        help="other models shown beside the target (and transfer sources for noise-recovery)",
    )
    p.add_argument(
        "--n-images", type=int, default=Settings.n_images, help="first N test images of the run's dataset"
    )
    p.add_argument("--which", default="best", choices=["best", "last"], help="checkpoint of a run folder")
    p.add_argument("--out", help="output folder (default RUN/analysis or CHECKPOINT/analysis)")
    p.add_argument("--dataset", help="dataset of the images (default: the run's, else cifar10-sample)")
    p.add_argument("--eps", default=Settings.eps, help="Linf budget of the attacks (pixels)")
    p.add_argument("--attack-steps", type=int, default=Settings.attack_steps)
    p.add_argument("--seed", type=int, default=Settings.seed)
    p.add_argument(
        "--n-steps",
        type=int,
        default=None,
        help="convergence: RISTA steps to run (default: each layer's own)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=Settings.max_steps,
        help="influence: finite differences for n_steps = 0..MAX",
    )
    p.add_argument(
        "--lams",
        type=_float_list,
        default=DEFAULT_LAMS,
        help="lambda-sweep: comma-separated test-time lambdas",
    )
    p.add_argument(
        "--noises",
        nargs="+",
        default=list(DEFAULT_NOISES),
        help="lambda-sweep: clean, gaussian:STD, impulse:FRACTION, sign:EPS",
    )
    p.add_argument(
        "--probe-size",
        type=int,
        default=Settings.probe_size,
        help="pursuit: global dictionary for (3, S, S) inputs",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")

    def run(args) -> int:
        from .adversarial import parse_noise
        from .runner import analyze, build_context

        _threads(args.threads)
        for spec in args.noises:
            parse_noise(spec)
        settings = Settings(
            n_images=args.n_images,
            eps=args.eps,
            attack_steps=args.attack_steps,
            seed=args.seed,
            n_steps=args.n_steps,
            max_steps=args.max_steps,
            lams=tuple(args.lams),
            noises=tuple(args.noises),
            probe_size=args.probe_size,
        )
        start = time.perf_counter()
        ctx = build_context(
            args.target,
            args.compare,
            settings=settings,
            which=args.which,
            out_dir=args.out,
            dataset=args.dataset,
            device=args.device,
        )
        results = analyze(ctx, args.what)
        print(f"wrote {', '.join(results)} to {ctx.out_dir} ({time.perf_counter() - start:.1f} s)")
        return 0

    return run


@command(
    "bench",
    "Table 7: time per batch of ResNet-18 with 0..14 convolutions replaced "
    "(--layers: single dictionary layers vs the convolution)",
)
def _bench(p: argparse.ArgumentParser):
    from .bench import BenchSettings

    p.add_argument("--width", type=int, default=BenchSettings.width, help="ResNet base width")
    p.add_argument("--batch", type=int, default=BenchSettings.batch)
    p.add_argument("--repeats", type=int, default=BenchSettings.repeats, help="timed calls")
    p.add_argument("--warmup", type=int, default=BenchSettings.warmup, help="untimed calls")
    p.add_argument(
        "--layers-list",
        type=_int_list,
        default=BenchSettings.layers_list,
        help="numbers of convolutions replaced (default 0,2,...,14)",
    )
    p.add_argument("--modes", default=",".join(BenchSettings.modes), help="dictionary modes, comma-separated")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--n-steps", type=int, default=None, help="RISTA steps (default: the layer's)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--out", help="output folder (default runs/bench-<settings>-<time>)")
    p.add_argument(
        "--layers",
        action="store_true",
        help="time dictionary layers and networks against the convolution floor instead of Table 7",
    )
    layer_bench.add_arguments(p)

    def run(args) -> int:
        _threads(args.threads)
        if args.layers:
            return int(layer_bench.run(args) or 0)
        from ..records import new_run_dir
        from .bench import BenchSettings, run_bench, write_bench

        settings = BenchSettings(
            width=args.width,
            batch=args.batch,
            repeats=args.repeats,
            warmup=args.warmup,
            layers_list=tuple(args.layers_list),
            modes=tuple(m for m in args.modes.split(",") if m),
            precision=args.precision,
            device=args.device,
            n_steps=args.n_steps,
        )
        settings.validate()
        record = run_bench(settings)
        if args.out:
            out = Path(args.out)
        else:
            out = new_run_dir(
                "runs",
                f"bench-resnet18-w{args.width}-b{args.batch}-"
                f"{args.precision}-{time.strftime('%Y%m%d-%H%M%S')}",
            )
        write_bench(record, out)
        print((out / "bench_table7.md").read_text())
        print(f"wrote {out}")
        return 0

    return run


@command("report", "one Markdown + HTML report of runs, their evaluations, analyses and bench tables")
def _report(p: argparse.ArgumentParser):
    p.add_argument(
        "paths", nargs="+", metavar="RUN_DIR", help="run folders, bench folders, or folders containing them"
    )
    p.add_argument(
        "--out",
        help="Markdown file (default RUN/report.md for one run, else ./report.md); the HTML goes beside it",
    )

    def run(args) -> int:
        from .report import build_report

        md, html = build_report(args.paths, args.out)
        print(f"wrote {md} and {html}")
        return 0

    return run
