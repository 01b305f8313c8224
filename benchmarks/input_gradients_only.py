"""What freezing the parameters during an attack step saves (``edlnet.attacks.base.input_gradients_only``).

An attack step is a forward pass in eval mode and the gradient of the loss with respect to the
input. Autograd skips the weight gradients of built-in convolutions that nothing asked for, but a
custom ``autograd.Function`` (the fused RISTA layer) only sees which of its inputs require
gradients, so with trainable parameters it computes the weight gradients of its 2T + 1
convolutions and throws them away. This script times one attack step of ResNet-10 and EDLNet-10
(elastic, n_steps 2) with the parameters trainable and frozen, round-robin in one process, and
checks that the input gradient is bitwise the same.

Writes benchmarks/results/input_gradients_only.{json,md}. Command (about a minute here):

    python benchmarks/input_gradients_only.py [--width 16] [--batch 128] [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edlnet
from edlnet.attacks.base import input_gradients_only
from edlnet.bench.measure import time_round_robin
from edlnet.records import environment

OUT = Path(__file__).parent / "results"
NETS = {"ResNet-10": {}, "EDLNet-10 (elastic, n_steps 2)": {"dl": "elastic", "n_steps": 2}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)

    cases, grads, models = {}, {}, {}
    for name, kw in NETS.items():
        torch.manual_seed(0)
        models[name] = model = edlnet.create_model("resnet10", width=args.width, **kw).eval()
        for frozen in (False, True):

            def step(model=model, frozen=frozen):
                xa = x.clone().requires_grad_(True)
                if frozen:
                    with input_gradients_only(model):
                        return torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), xa)[0]
                return torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), xa)[0]

            key = f"{name} / {'frozen' if frozen else 'trainable'}"
            cases[key] = step
            grads[key] = step()
    timed = time_round_robin(cases, args.repeats, 1)
    rows = []
    for name in NETS:
        t, f = timed[f"{name} / trainable"]["median_s"], timed[f"{name} / frozen"]["median_s"]
        same = torch.equal(grads[f"{name} / trainable"], grads[f"{name} / frozen"])
        rows.append(
            {"network": name, "trainable_s": t, "frozen_s": f, "speedup": t / f, "bitwise_same": same}
        )
    env = environment()
    record = {
        "command": "python benchmarks/input_gradients_only.py " + " ".join(argv or sys.argv[1:]),
        "width": args.width,
        "batch": args.batch,
        "repeats": args.repeats,
        "threads": args.threads,
        "environment": env,
        "rows": rows,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "input_gradients_only.json").write_text(json.dumps(record, indent=1))
    lines = [
        "# One attack step with trainable vs frozen parameters",
        "",
        f"Eval mode, input gradient of the summed cross-entropy; width {args.width}, batch {args.batch}, "
        f"{args.threads} threads, median of {args.repeats} round-robin repeats; CPU {env.get('cpu')}. "
        f"`{record['command'].strip()}`",
        "",
        "| network | trainable (s) | frozen (s) | speed-up | input gradient bitwise the same |",
        "|---|---|---|---|---|",
        *(
            f"| {r['network']} | {r['trainable_s']:.3f} | {r['frozen_s']:.3f} | {r['speedup']:.2f}× | {r['bitwise_same']} |"
            for r in rows
        ),
        "",
    ]
    (OUT / "input_gradients_only.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
