"""Stability of EDLNet-18 in elastic mode: gradient norms at initialization for the prototype's
settings and for the library's defaults, then a short training run that tracks the dictionary
scale L = ‖A‖², the step's η·L, how far RISTA moves the code from z₀, and gradient norms.

Writes benchmarks/results/stability.json and .md. Command:

    python benchmarks/stability.py [--steps 150] [--width 16]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import edlnet

OUT = Path(__file__).parent / "results"
SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-exact-subset.npz"


def load_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = np.load(SUBSET)
    x = torch.from_numpy(d["x_train_batchprefixes"][:n]).permute(0, 3, 1, 2).float() / 255
    return x, torch.from_numpy(d["y_train_batchprefixes"][:n]).long()


def grad_norms(model, x, y) -> dict:
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    pg = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters() if p.grad is not None))
    return {
        "loss": float(loss),
        "input_grad_norm": float(x.grad.detach().norm()),
        "param_grad_norm": pg,
        "finite": bool(math.isfinite(pg) and torch.isfinite(x.grad).all()),
    }


def layer_stats(model, x) -> dict:
    """Per layer: L = ‖A‖² of the raw weight, η·L of the problem RISTA solves, and the relative
    change RISTA makes to the code, ‖z_T − z₀‖/‖z₀‖ (0 means the layer is just a convolution)."""
    Ls, etaL, moves = [], [], []
    with torch.no_grad(), edlnet.capture_layers(model) as rec:
        model(x)
    for name, m in edlnet.dict_layers(model):
        inp = rec[name]["input"]
        L = float(m.dict_norm) ** 2
        weight, scale, eta = m._solver_inputs(inp)
        eta = float(eta)
        Lw = float(m.dict_norm) ** 2 if not m.normalize else 1.0
        z0 = F.conv2d(inp, m.weight, None, m.stride, m.padding)
        zT = m.solve(inp)
        Ls.append(L)
        etaL.append(eta * Lw)
        moves.append(float((zT - z0).norm() / z0.norm().clamp_min(1e-12)))
    return {
        "L_max": max(Ls),
        "L_median": float(np.median(Ls)),
        "etaL_max": max(etaL),
        "etaL_min": min(etaL),
        "move_median": float(np.median(moves)),
        "move_min": min(moves),
    }


INIT_CONFIGS = [
    ("prototype: raw A, step 1.0, eps 1e-3", dict(normalize=False, step=1.0, eps=1e-3)),
    ("raw A, step 1/L, eps 1e-2", dict(normalize=False, step="auto", eps=1e-2)),
    ("normalized A, step 1/L, eps 1e-2", dict(step="auto", eps=1e-2)),
    ("normalized A, step 1/L, eps 0.1", dict(step="auto", eps=0.1)),
    ("normalized A, majorize step, eps 1e-2", dict(step="majorize", eps=1e-2)),
    ("default: normalized A, majorize step, eps 0.1", dict()),
]
TRAIN_CONFIGS = [
    ("default: normalized A, majorize step, eps 0.1", {}),
    ("normalized A, step 1/L, eps 0.1", dict(step="auto")),
    ("raw A, step 1/L, eps 1e-2 (prototype-like)", dict(normalize=False, step="auto", eps=1e-2)),
]


def init_table(width: int, x, y) -> list[dict]:
    rows = []
    for label, opts in INIT_CONFIGS:
        for beta in (0.0, 0.5):
            for n_steps in (2, 5):
                torch.manual_seed(0)
                model = edlnet.create_model(
                    "resnet18", width=width, dl="elastic", beta=beta, n_steps=n_steps, **opts
                )
                model.train()
                r = grad_norms(model, x, y)
                rows.append({"config": label, "beta": beta, "n_steps": n_steps, **r})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def train_run(label: str, opts: dict, width: int, steps: int, x, y, batch: int = 64) -> list[dict]:
    torch.manual_seed(0)
    model = edlnet.create_model("resnet18", width=width, dl="elastic", **opts)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    log = []
    probe = x[:32]
    t0 = time.time()
    for step in range(steps + 1):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        model.train()
        xb = x[idx]
        flip = torch.rand(batch, generator=gen) < 0.5
        xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
        r = grad_norms(model, xb, y[idx])
        if step % max(1, steps // 6) == 0:
            model.eval()
            s = layer_stats(model, probe)
            betas = list(edlnet.betas(model).values())
            rec = {
                "config": label,
                "step": step,
                **r,
                **s,
                "beta_min": min(betas),
                "beta_max": max(betas),
                "seconds": round(time.time() - t0, 1),
            }
            log.append(rec)
            print(json.dumps(rec), flush=True)
        if not r["finite"]:
            log.append({"config": label, "step": step, "stopped": "non-finite gradient"})
            break
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9)
        opt.step()
    return log


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load_images(2048)
    ref = []
    for label, kw in [("plain ResNet-18", {}), ("Vanilla DL", {"dl": "vanilla"})]:
        torch.manual_seed(0)
        model = edlnet.create_model("resnet18", width=args.width, **kw)
        ref.append({"config": label, "beta": "-", "n_steps": 2, **grad_norms(model.train(), x[:32], y[:32])})
    init = ref + init_table(args.width, x[:32], y[:32])
    runs = []
    for label, opts in TRAIN_CONFIGS:
        runs += train_run(label, opts, args.width, args.steps, x, y)
    OUT.mkdir(exist_ok=True)
    result = {
        "command": "python " + " ".join(sys.argv),
        "width": args.width,
        "torch": torch.__version__,
        "init": init,
        "training": runs,
    }
    (OUT / "stability.json").write_text(json.dumps(result, indent=1))
    lines = [
        "# EDLNet-18 stability (elastic mode)",
        "",
        f"`{result['command']}`",
        "",
        "## Gradient norms at initialization (batch 32, train mode)",
        "",
        "| config | β | n_steps | loss | ‖∇x‖ | ‖∇θ‖ | finite |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in init:
        lines.append(
            f"| {r['config']} | {r['beta']} | {r['n_steps']} | {r['loss']:.3f} | "
            f"{r['input_grad_norm']:.3g} | {r['param_grad_norm']:.3g} | {r['finite']} |"
        )
    lines += [
        "",
        "## Short training (SGD lr 0.05, batch 64, CIFAR-10 exact subset)",
        "",
        "| config | step | loss | ‖∇θ‖ | L max | η·L max | median ‖z_T−z₀‖/‖z₀‖ | β range |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if "stopped" in r:
            lines.append(f"| {r['config']} | {r['step']} | stopped: {r['stopped']} | | | | | |")
            continue
        lines.append(
            f"| {r['config']} | {r['step']} | {r['loss']:.3f} | {r['param_grad_norm']:.3g} | "
            f"{r['L_max']:.3g} | {r['etaL_max']:.3g} | {r['move_median']:.3f} | "
            f"{r['beta_min']:.2f}–{r['beta_max']:.2f} |"
        )
    (OUT / "stability.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
