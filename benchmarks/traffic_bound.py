"""How close the compiled dictionary layer is to what its memory traffic allows.

``edlnet bench --layers`` judges one ``DictConv2d(impl="compiled")`` (elastic, n_steps 2,
forward+backward, batch 128) against ``LAYER_BOUND`` (1.15) × its convolution floor. Above the
floor the layer runs Inductor's fused elementwise loops (the residual, the reweighting, the
threshold, their gradients and sums), and at narrow widths those loops are bound by memory
traffic. This script turns that into a number for the machine it runs on:

* ``passes``: the bytes the fused loops read and write per forward+backward, Inductor's own
  count, in activation-sized tensors (:func:`compiled_layer_profile.fused_passes`);
* ``pass``: the time one activation-sized tensor takes to stream through memory here,
  measured as a third of ``torch.add(a, b, out=c)`` on three such tensors (two reads, one write)
  of the input's dtype — the same kind of vectorized loop, on the same threads;
* ``traffic bound`` = 1 + passes × pass ÷ floor: the layer ÷ floor ratio the layer would reach
  if its convolutions cost exactly the floor's and its loops moved Inductor's bytes at that
  rate and did nothing else (no power iteration, no Python, no allocation);
* ``layer`` = the measured layer ÷ floor, and ``beyond traffic`` = layer − traffic bound, the
  part the bytes do not explain.

Floor, layer and the streaming op are timed in the same round-robin rounds, so each round gives
one layer ratio and one traffic bound; medians with distribution-free 95% intervals
(:func:`edlnet.bench.measure.paired_ratio`). Where the traffic bound itself is at or above
1.15, no rewrite that keeps these bytes can meet the target on this machine: only fewer
bytes can.

Inductor's count is of its scheduled loops' buffers; a loop that reads a buffer twice (a sum
placed in a loop of its own) counts once, so the bound errs low, never high.

Command (about 10 minutes on 2 cores: each geometry compiles once, without Inductor's caches,
so its bytes are counted)::

    python benchmarks/traffic_bound.py --out benchmarks/results/traffic_bound [--precision bf16]

writes ``traffic_bound.{json,md}`` in ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compiled_layer_profile import N_STEPS, SHAPES, compiled_case, fused_passes

from edlnet.allocator import keep_freed_memory
from edlnet.bench.layers import _floor_case, _layer_case, bf16_native
from edlnet.bench.measure import median_summary, paired_ratio, summary_text, time_round_robin
from edlnet.bench.targets import LAYER_BOUND
from edlnet.records import environment, write_json


def stream_case(x: torch.Tensor):
    """torch.add of two tensors shaped like ``x`` into a third: three passes through memory."""
    a, b, c = (torch.randn_like(x) for _ in range(3))

    def step():
        torch.add(a, b, out=c)

    return step


def measure_case(channels: int, size: int, fmt: str, opt: argparse.Namespace) -> dict:
    x, g, w, layer = compiled_case(channels, size, opt.batch, fmt)
    layer_step = _layer_case(layer, x, g, opt.precision)
    activation_bytes = x.numel() * x.element_size()
    passes = fused_passes(layer_step, activation_bytes)  # compiles the layer now
    cases = {
        "floor": _floor_case(x, w, g, N_STEPS, opt.precision),
        "layer": layer_step,
        "stream": stream_case(x.detach()),
    }
    t = time_round_robin(cases, opt.rounds, warmup=2)
    floor, lay, stream = (t[k]["times_s"] for k in ("floor", "layer", "stream"))
    bound = [1 + passes * (s / 3) / f for s, f in zip(stream, floor)]
    return dict(
        channels=channels,
        size=size,
        batch=opt.batch,
        memory_format=fmt,
        precision=opt.precision,
        activation_mb=activation_bytes / 2**20,
        fused_passes=passes,
        floor_s=statistics.median(floor),
        layer_s=statistics.median(lay),
        pass_ms=1e3 * statistics.median(stream) / 3,
        layer_ratio=paired_ratio(lay, floor),
        traffic_bound=median_summary(bound),
        beyond_traffic=median_summary([a / f - b for a, f, b in zip(lay, floor, bound)]),
        times_s={k: t[k]["times_s"] for k in cases},
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument(
        "--shapes", default=",".join(f"{c}x{s}" for c, s in SHAPES), help="channels x size, e.g. 16x32,32x32"
    )
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.precision == "bf16" and not bf16_native(torch.device("cpu")):
        p.error("--precision bf16 needs native bf16 convolutions on this CPU (oneDNN reports none)")
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as edlnet bench: freed memory is reused, new buffers cost no page faults
    from torch._inductor import config as inductor_config

    inductor_config.fx_graph_cache = False  # compile every graph here, so its bytes are counted
    torch._functorch.config.enable_autograd_cache = False
    shapes = [tuple(int(v) for v in item.split("x")) for item in args.shapes.split(",")]
    rows = []
    for channels, size in shapes:
        for fmt in ("contiguous", "channels_last"):
            rows.append(measure_case(channels, size, fmt, args))
            print(markdown_row(rows[-1]), flush=True)
    record = dict(
        command="python benchmarks/traffic_bound.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        environment=environment(),
        options=dict(batch=args.batch, rounds=args.rounds, threads=args.threads, n_steps=N_STEPS),
        rows=rows,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "traffic_bound.json", record)
    (args.out / "traffic_bound.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def markdown_row(r: dict) -> str:
    return (
        f"| {r['channels']}→{r['channels']} @ {r['size']}×{r['size']} | {r['precision']} | {r['memory_format']} | "
        f"{1e3 * r['floor_s']:.1f} | {1e3 * r['layer_s']:.1f} | {r['fused_passes']:.1f} | {r['pass_ms']:.3f} | "
        f"{summary_text(r['traffic_bound'], 3)} | {summary_text(r['layer_ratio'], 3)} | {summary_text(r['beyond_traffic'], 3)} |"
    )


def markdown(record: dict) -> str:
    env, opt = record["environment"], record["options"]
    lines = [
        "# The compiled layer against its memory-traffic bound",
        "",
        f"`{record['command']}` — torch {env['torch']}, CPU {env['cpu']} ({env['cpu_capability']}), "
        f"{opt['threads']} threads, commit {env['git_commit']}.",
        "",
        f"One elastic `DictConv2d(impl='compiled')`, n_steps {opt['n_steps']}, forward+backward, batch "
        f"{opt['batch']}, {opt['rounds']} round-robin rounds of floor, layer and a streaming op. Floor and "
        "layer: median ms. Passes: the bytes of Inductor's fused loops per forward+backward, in "
        "activation-sized tensors (its own count). Pass: ms to stream one activation-sized tensor "
        "(a third of `torch.add(a, b, out=c)`). Traffic bound = 1 + passes × pass ÷ floor, the "
        "layer ÷ floor the bytes alone allow; layer = the measured layer ÷ floor; beyond = layer − "
        f"bound. Medians of per-round values [95% interval]. The target is layer ≤ {LAYER_BOUND}.",
        "",
        "| shape | precision | format | floor (ms) | layer (ms) | passes | pass (ms) | traffic bound "
        "| layer ÷ floor | beyond traffic |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [markdown_row(r) for r in record["rows"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
