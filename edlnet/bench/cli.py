"""``edlnet bench``: the paper's Table 7 (:mod:`edlnet.bench.table7`), or with ``--layers`` single
dictionary layers and whole networks against the convolution floor (:mod:`edlnet.bench.layers`,
which adds its own options to the command)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..cli import command
from . import layers


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,2,4, got {text!r}"
        ) from None


@command(
    "bench",
    "Table 7: time per batch of ResNet-18 with 0..14 convolutions replaced "
    "(--layers: single dictionary layers vs the convolution)",
)
def _bench(p: argparse.ArgumentParser):
    from .table7 import BenchSettings

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
    layers.add_arguments(p)

    def run(args) -> int:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if args.layers:
            return int(layers.run(args) or 0)
        from ..records import new_run_dir
        from .table7 import run_bench, write_bench

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
