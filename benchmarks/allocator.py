"""What keeping freed memory in the process saves (``edlnet.allocator.keep_freed_memory``).

glibc hands large blocks out with a fresh ``mmap`` (and trims the heap when its top is free),
so an activation allocated and freed every step gets fresh pages every step, each paying a page
fault on first touch. This script times, in two child processes that differ only in
``EDLNET_ALLOCATOR`` (``system``: glibc's defaults; ``keep``: the library's default), one
elastic ``DictConv2d`` forward+backward (n_steps 2, batch 128, fast path) and its convolution
floor (the 2T + 1 plain convolutions), at 16→16 and 64→64 channels and 32×32, fp32 and bf16
autocast; and checks that the layer's output and input gradient are bitwise the same in both.

Writes benchmarks/results/allocator.{json,md}. Command (about three minutes here):

    python benchmarks/allocator.py [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "results"
SHAPES = (16, 64)


def child(repeats: int, threads: int) -> dict:
    """Run in a child process: time every case under this process's allocator setting."""
    from edlnet.allocator import keep_freed_memory
    from edlnet.bench.measure import autocast_for, time_round_robin
    from edlnet.layers import DictConv2d

    state = keep_freed_memory()
    torch.set_num_threads(threads)
    cases, digests = {}, {}
    for channels in SHAPES:
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(128, channels, 32, 32, generator=gen).requires_grad_()
        g = torch.randn(128, channels, 32, 32, generator=gen)
        w = (torch.randn(channels, channels, 3, 3, generator=gen) / (3 * channels**0.5)).requires_grad_()
        torch.manual_seed(0)
        layer = DictConv2d(channels, channels, 3, 1, 1, n_steps=2)
        for precision in ("fp32", "bf16"):

            def floor(x=x, w=w, g=g, precision=precision):
                with autocast_for(precision, x.device)():
                    z = F.conv2d(x, w, None, 1, 1)
                    for _ in range(2):
                        z = F.conv2d(F.conv_transpose2d(z, w, None, 1, 1), w, None, 1, 1)
                z.backward(g)
                x.grad = w.grad = None

            def step(x=x, g=g, layer=layer, precision=precision):
                with autocast_for(precision, x.device)():
                    y = layer(x)
                y.backward(g)
                out = (y.detach(), x.grad)
                x.grad = None
                layer.zero_grad(set_to_none=True)
                return out

            cases[f"{channels}/{precision}/floor"] = floor
            cases[f"{channels}/{precision}/layer"] = step
            y, gx = step()
            digests[f"{channels}/{precision}"] = hashlib.sha256(
                y.numpy().tobytes() + gx.numpy().tobytes()
            ).hexdigest()
    timed = time_round_robin(cases, repeats, 1, torch.device("cpu"))
    return {
        "allocator": state.reason,
        "times": {k: v["median_s"] for k, v in timed.items()},
        "digests": digests,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.repeats, args.threads)))
        return 0
    from edlnet.records import environment

    runs = {}
    for setting in ("system", "keep"):
        env = {**os.environ, "EDLNET_ALLOCATOR": setting}
        cmd = [sys.executable, __file__, "--child", f"--repeats={args.repeats}", f"--threads={args.threads}"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        runs[setting] = json.loads(out.strip().splitlines()[-1])
    rows = []
    for channels in SHAPES:
        for precision in ("fp32", "bf16"):
            key = f"{channels}/{precision}"
            t = {s: {c: runs[s]["times"][f"{key}/{c}"] for c in ("floor", "layer")} for s in runs}
            rows.append(
                dict(
                    channels=channels,
                    precision=precision,
                    floor_system_s=t["system"]["floor"],
                    floor_keep_s=t["keep"]["floor"],
                    layer_system_s=t["system"]["layer"],
                    layer_keep_s=t["keep"]["layer"],
                    layer_speedup=t["system"]["layer"] / t["keep"]["layer"],
                    layer_over_floor_system=t["system"]["layer"] / t["system"]["floor"],
                    layer_over_floor_keep=t["keep"]["layer"] / t["keep"]["floor"],
                    bitwise_same=runs["system"]["digests"][key] == runs["keep"]["digests"][key],
                )
            )
    env = environment()
    result = {
        "command": "python benchmarks/allocator.py " + " ".join(argv or sys.argv[1:]),
        "environment": env,
        "allocator_reported": {s: r["allocator"] for s, r in runs.items()},
        "rows": rows,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "allocator.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Keeping freed memory in the process (edlnet.allocator)",
        "",
        f"`{result['command'].strip()}` — {env['cpu']}, torch {env['torch']}, {args.threads} threads, "
        f"commit {env['git_commit']}. One elastic DictConv2d (n_steps 2, batch 128, 32×32, fast "
        "path, forward+backward) and its floor (5 chained convolutions), medians of "
        f"{args.repeats} round-robin repeats; `system` = glibc's defaults, `keep` = "
        "`keep_freed_memory()` (each in its own process).",
        "",
        "| channels | precision | floor system (s) | floor keep (s) | layer system (s) | layer keep (s) "
        "| layer speed-up | layer ÷ floor, system | layer ÷ floor, keep | bitwise same |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['channels']}→{r['channels']} | {r['precision']} | {r['floor_system_s']:.3f} | "
            f"{r['floor_keep_s']:.3f} | {r['layer_system_s']:.3f} | {r['layer_keep_s']:.3f} | "
            f"{r['layer_speedup']:.2f}× | {r['layer_over_floor_system']:.2f} | "
            f"{r['layer_over_floor_keep']:.2f} | {'yes' if r['bitwise_same'] else 'NO'} |"
        )
    (OUT / "allocator.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
