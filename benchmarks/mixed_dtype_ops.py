"""Why ``rista_fast`` converts between bf16 and fp32 through scratch buffers.

Times, for one CIFAR stage-1 activation (batch 128 × 64 channels × 32×32 = 8M elements), the
elementwise steps of a dictionary layer done three ways: same-dtype in place, mixing bf16 and
fp32 in one op, and casting (into a new tensor, or into an existing buffer). Medians of
``--repeats`` calls after one warm-up, all in one process.

Writes benchmarks/results/mixed_dtype_ops.{json,md}. Command:

    python benchmarks/mixed_dtype_ops.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from edlnet.records import environment

OUT = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    x = torch.rand(128, 64, 32, 32)
    b = torch.rand(128, 64, 32, 32).bfloat16()
    out, out_b = torch.empty_like(x), torch.empty_like(b)
    cases = {
        "fp32 − fp32 into a buffer": lambda: torch.sub(x, x, out=out),
        "fp32 − bf16, new tensor": lambda: torch.sub(x, b),
        "fp32 − bf16 into an fp32 buffer": lambda: torch.sub(x, b, out=out),
        "fp32 += α·bf16, new tensor": lambda: torch.add(x, b, alpha=0.3),
        "fp32 buffer −= bf16 in place": lambda: out.sub_(b),
        "addcdiv fp32 → fp32 buffer": lambda: torch.addcdiv(x, x, x, value=0.5, out=out),
        "addcdiv fp32 → bf16 buffer": lambda: torch.addcdiv(x, x, x, value=0.5, out=out_b),
        "cast bf16 → fp32, new tensor": lambda: b.float(),
        "cast bf16 → fp32 into a buffer": lambda: out.copy_(b),
        "cast fp32 → bf16, new tensor": lambda: x.bfloat16(),
        "cast fp32 → bf16 into a buffer": lambda: out_b.copy_(x),
    }
    rows = []
    for name, fn in cases.items():
        fn()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        rows.append({"op": name, "median_ms": statistics.median(times) * 1e3})
        print(f"{name:34s} {rows[-1]['median_ms']:7.2f} ms", flush=True)
    record = {
        "command": "python benchmarks/mixed_dtype_ops.py " + " ".join(argv or sys.argv[1:]),
        "elements": x.numel(),
        "threads": args.threads,
        "environment": environment(),
        "rows": rows,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "mixed_dtype_ops.json").write_text(json.dumps(record, indent=2) + "\n")
    md = [
        "# Mixed-dtype elementwise ops on this CPU",
        "",
        f"Command: `{record['command']}`; "
        f"{x.numel():,} elements, {args.threads} threads, median of {args.repeats}.",
        "",
        "| op | ms |",
        "|---|---|",
        *[f"| {r['op']} | {r['median_ms']:.2f} |" for r in rows],
    ]
    (OUT / "mixed_dtype_ops.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
