"""Where the compiled dictionary layer's time goes: convolutions against fused elementwise loops.

``edlnet bench --layers`` times one ``DictConv2d(impl="compiled")`` (elastic, n_steps 2,
forward+backward, batch 128) against its convolution floor (the 2T + 1 chained convolutions).
This script splits both under ``torch.profiler`` with Inductor's per-kernel profiling on:

* ``conv``: the oneDNN convolution calls (forward and ``convolution_backward``), self time;
* ``fused``: Inductor's generated loops (every elementwise pass, cast and reduction of the
  layer, forward and backward), one profiler event per kernel;
* ``other``: the rest (the norm's power-iteration step on one image, autograd, allocation).

All three are per step, in milliseconds of profiled CPU time (the profiler adds its own
overhead, so compare the split, not the totals, with the bench's wall times). Comparing
the two memory formats shows what the layout costs inside the fused loops.

Freed memory is kept in the process (:func:`edlnet.allocator.keep_freed_memory`), as in
``edlnet bench``: with glibc's defaults every new buffer of a generated loop would be paged in
afresh and the fused loops' time would include those page faults (records before
``compiled_layer_profile_weightdot/`` were taken that way).

``fused passes``: the bytes Inductor's generated loops read and write in one forward+backward
(its own count, ``graph.count_bytes`` of each compiled graph, taken at compilation: the
script compiles without Inductor's caches), in units of one activation tensor — how many
times the loops stream an input-sized tensor through memory.

Writes benchmarks/results/compiled_layer_profile.{json,md}. Command (a few minutes; compiles
each geometry once, later runs reuse Inductor's cache):

    python benchmarks/compiled_layer_profile.py [--batch 128] [--steps 5] [--threads 2] [--precision bf16]

``--precision bf16`` profiles the layer and its floor under bf16 autocast, as the bench's
``layers_bf16`` section times them (meaningful where the CPU has native bf16 convolutions).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edlnet.allocator import keep_freed_memory
from edlnet.bench.layers import _floor_case, _layer_case  # the steps edlnet bench --layers times
from edlnet.layers.dict_conv import DictConv2d
from edlnet.records import environment

OUT = Path(__file__).parent / "results"
SHAPES = ((16, 32), (32, 32), (64, 32), (256, 8))  # (channels, spatial size), as edlnet bench --layers
CONV_OPS = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::_convolution")
N_STEPS = 2


def compiled_case(
    channels: int, size: int, batch: int, fmt: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.nn.Module]:
    """The inputs of one bench case (as ``edlnet bench --layers`` draws them): the input x, the
    output gradient g, the floor's weight w (x and w require gradients) and an elastic
    ``DictConv2d(impl="compiled")`` with n_steps ``N_STEPS``, all in memory format ``fmt``."""
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, channels, size, size, generator=gen).contiguous(memory_format=mf)
    g = torch.randn(batch, channels, size, size, generator=gen).contiguous(memory_format=mf)
    w = torch.randn(channels, channels, 3, 3, generator=gen) / (3 * channels**0.5)
    x.requires_grad_()
    w = w.contiguous(memory_format=mf).requires_grad_()
    torch.manual_seed(0)
    layer = DictConv2d(channels, channels, 3, 1, 1, n_steps=N_STEPS, impl="compiled").to(memory_format=mf)
    return x, g, w, layer


def fused_passes(step, activation_bytes: int) -> float:
    """Run ``step`` once (it must compile now) and return the bytes of Inductor's fused loops in
    its compiled graphs, in activation tensors (Inductor counts them when this logger is on)."""
    from torch._inductor import compile_fx, metrics
    from torch._inductor.scheduler import ExternKernelSchedulerNode, NopKernelSchedulerNode

    log = compile_fx.inductor_metrics_log
    level, propagate = log.level, log.propagate
    log.setLevel(logging.INFO)
    log.propagate = False  # counted, not printed
    handler = logging.NullHandler()
    log.addHandler(handler)
    metrics.reset()
    try:
        step()
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate
    extern = (ExternKernelSchedulerNode, NopKernelSchedulerNode)  # convolutions, views
    # Inductor records (node, bytes // 4) per scheduled node of every graph it compiled
    loop_bytes = sum(4 * n for node, n in metrics.nodes_num_elem if not isinstance(node, extern))
    return loop_bytes / activation_bytes


def split(step, steps: int) -> dict[str, float]:
    """Profiled self time per step (ms): convolutions, Inductor's fused loops, the rest."""
    for _ in range(2):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    parts = {"conv": 0.0, "fused": 0.0, "other": 0.0}
    for e in prof.key_averages():
        kind = "conv" if e.key in CONV_OPS else "fused" if e.key.startswith("graph_") else "other"
        parts[kind] += e.self_cpu_time_total / 1e3 / steps
    return parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument(
        "--shapes", default=",".join(f"{c}x{s}" for c, s in SHAPES), help="channels x size, e.g. 16x32,32x32"
    )
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    # as edlnet bench does (its CLI): freed memory is reused, so new buffers cost no page faults
    keep_freed_memory()
    from torch._inductor import config as inductor_config

    inductor_config.cpp.enable_kernel_profile = True  # one profiler event per generated loop
    inductor_config.fx_graph_cache = False  # compile every graph here, so its bytes are counted
    torch._functorch.config.enable_autograd_cache = False
    rows = []
    shapes = [tuple(int(v) for v in item.split("x")) for item in args.shapes.split(",")]
    for (channels, size), fmt in [(s, f) for s in shapes for f in ("contiguous", "channels_last")]:
        x, g, w, layer = compiled_case(channels, size, args.batch, fmt)
        floor = split(_floor_case(x, w, g, N_STEPS, args.precision), args.steps)
        passes = fused_passes(_layer_case(layer, x, g, args.precision), x.numel() * x.element_size())
        compiled = split(_layer_case(layer, x, g, args.precision), args.steps)
        rows.append(
            dict(
                channels=channels,
                size=size,
                batch=args.batch,
                memory_format=fmt,
                floor_conv_ms=floor["conv"],
                floor_total_ms=sum(floor.values()),
                conv_ms=compiled["conv"],
                fused_ms=compiled["fused"],
                other_ms=compiled["other"],
                total_ms=sum(compiled.values()),
                activation_mb=x.numel() * x.element_size() / 2**20,
                fused_passes=passes,
            )
        )
        print(rows[-1], flush=True)
    record = dict(
        command="python benchmarks/compiled_layer_profile.py " + " ".join(argv or sys.argv[1:]),
        environment=environment(),
        options=dict(
            batch=args.batch,
            steps=args.steps,
            threads=args.threads,
            n_steps=N_STEPS,
            precision=args.precision,
        ),
        rows=rows,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compiled_layer_profile.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / "compiled_layer_profile.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def markdown(record: dict) -> str:
    env = record["environment"]
    lines = [
        "# Where the compiled dictionary layer's time goes",
        "",
        f"`{record['command']}` — torch {env['torch']}, CPU {env['cpu']} ({env['cpu_capability']}), "
        f"{record['options']['threads']} threads, {record['options']['precision']}, "
        f"commit {env['git_commit']}.",
        "",
        "One elastic `DictConv2d(impl='compiled')`, n_steps 2, forward+backward, batch "
        f"{record['options']['batch']}; profiled self CPU time per step in ms (mean of "
        f"{record['options']['steps']} steps). conv = oneDNN convolution calls; fused = Inductor's "
        "generated loops (all elementwise work, casts and reductions); other = the rest (power "
        "iteration on one image, autograd, allocation). Last column: the fused loops as a "
        "fraction of the floor's convolution time — what fusion leaves above the floor. Fused "
        "passes: the bytes the fused loops read and write per forward+backward (Inductor's count), "
        "in activation tensors.",
        "",
        "| shape | format | floor conv | layer conv | fused | other | layer total | fused ÷ floor conv "
        "| fused passes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        lines.append(
            f"| {r['channels']}→{r['channels']} @ {r['size']}×{r['size']} | {r['memory_format']} | "
            f"{r['floor_conv_ms']:.1f} | {r['conv_ms']:.1f} | {r['fused_ms']:.1f} | {r['other_ms']:.1f} | "
            f"{r['total_ms']:.1f} | {r['fused_ms'] / r['floor_conv_ms']:.2f} | "
            f"{r['fused_passes']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
