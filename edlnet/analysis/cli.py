"""``edlnet analyze RUN --what ...``: the papers' analyses of a model (:mod:`edlnet.analysis`)."""

from __future__ import annotations

import argparse
import time

from ..cli import command


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0,0.1,0.2, got {text!r}"
        ) from None


@command("analyze", "the papers' analyses of a model: PNG figures and JSON/Markdown tables")
def _analyze(p: argparse.ArgumentParser):
    from .base import DEFAULT_LAMS, DEFAULT_NOISES, Settings, analysis_names

    p.add_argument("target", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument(
        "--what",
        nargs="+",
        default=["all"],
        metavar="NAME",
        help="analyses to run: " + ", ".join(analysis_names()) + " or all (those that apply)",
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
        from .noise import parse_noise
        from .runner import analyze, build_context

        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
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
