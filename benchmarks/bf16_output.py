"""What returning bf16 from dictionary layers under bf16 autocast changes in a network step.

Since this change a ``DictConv2d`` under bf16 autocast returns its code in bf16, as
``nn.Conv2d`` does there (the iteration still keeps codes and residuals in fp32 and rounds the
result once), so the BatchNorm, ReLU and residual additions between layers run in bf16. This
script times both rules in one process (the old one, "fp32 result", restored by swapping the
rule both RISTA paths call), round-robin with ResNet-10: the attack step (eval mode, input
gradient) and the single-step adversarial training step (FGSM with random start) of EDLNet-10
width 16 (elastic; fast and compiled paths), batch 128, bf16 autocast.

Writes benchmarks/results/bf16_output.{json,md}. Command (about five minutes here, more on a
cold Inductor cache):

    python benchmarks/bf16_output.py [--repeats 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "results"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import edlnet
    import edlnet.layers.rista_compiled as rista_compiled
    import edlnet.layers.rista_fast as rista_fast
    from edlnet.allocator import keep_freed_memory
    from edlnet.attacks.base import input_gradients_only
    from edlnet.bench.measure import time_round_robin
    from edlnet.records import environment
    from edlnet.tables import markdown_grid

    keep_freed_memory()
    torch.set_num_threads(args.threads)
    bf16_result = rista_fast.output_dtype
    rule = {"fp32_result": False}

    def output_dtype(x, state, conv):
        return state if rule["fp32_result"] else bf16_result(x, state, conv)

    rista_fast.output_dtype = rista_compiled.output_dtype = output_dtype

    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(128, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (128,), generator=gen)

    def make_step(model, kind, fp32_result):
        def step():
            rule["fp32_result"] = fp32_result
            xa = x0.detach().requires_grad_(True)
            with input_gradients_only(model), torch.autocast("cpu", dtype=torch.bfloat16):
                (g,) = torch.autograd.grad(F.cross_entropy(model(xa).float(), y), xa)
            if kind == "train_step":
                xa = (x0 + 8 / 255 * g.sign()).clamp(0, 1).detach()
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    F.cross_entropy(model(xa).float(), y).backward()
                model.zero_grad(set_to_none=True)

        return step

    cases = {}
    for kind in ("attack_step", "train_step"):
        for impl in ("plain", "fast", "compiled"):
            torch.manual_seed(0)
            kw = {} if impl == "plain" else dict(dl="elastic", impl=impl)
            model = edlnet.create_model("resnet10", width=16, **kw).train(kind == "train_step")
            rules = ("bf16_result",) if impl == "plain" else ("bf16_result", "fp32_result")
            for r in rules:
                cases[f"{kind}/{impl}/{r}"] = make_step(model, kind, r == "fp32_result")
    timed = time_round_robin(cases, args.repeats, warmup=2)
    rows = []
    for key, t in timed.items():
        kind, impl, r = key.split("/")
        plain = timed[f"{kind}/plain/bf16_result"]["median_s"]
        rows.append(dict(step=kind, network=impl, result=r, **t, vs_resnet10=t["median_s"] / plain))
    command = " ".join(["python benchmarks/bf16_output.py", *sys.argv[1:]])
    OUT.mkdir(parents=True, exist_ok=True)
    env = environment()
    (OUT / "bf16_output.json").write_text(
        json.dumps(dict(command=command, environment=env, rows=rows), indent=2)
    )
    lines = [
        "# Dictionary layers' result dtype under bf16 autocast: bf16 (now) against fp32 (before)",
        "",
        f"Command: `{command}`. CPU: {env.get('cpu', 'unknown')}; {args.threads} threads, torch "
        f"{torch.__version__}; EDLNet-10 / ResNet-10 width 16, batch 128, bf16 autocast; medians of "
        f"{args.repeats} round-robin repeats.",
        "",
        markdown_grid(
            ["step", "network", "layer result", "median (ms)", "min (ms)", "× ResNet-10"],
            [
                [
                    r["step"],
                    r["network"],
                    r["result"],
                    f"{r['median_s'] * 1e3:.1f}",
                    f"{r['min_s'] * 1e3:.1f}",
                    f"{r['vs_resnet10']:.2f}",
                ]
                for r in rows
            ],
        ),
    ]
    (OUT / "bf16_output.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
