"""Training throughput (images/s) of ResNet-18 and EDLNet-18 on this machine, fp32 and bf16.

Each row times real training epochs of :class:`edlnet.train.loop.Trainer` — augmentation on the
device, forward, cross-entropy, backward, SGD step — on the bundled CIFAR-10 sample: one epoch
of ``--steps`` batches to warm up (allocator, oneDNN kernels, the power iteration's cold start),
then ``--repeats`` timed epochs of ``--steps`` batches each; images/s is the median. Rows run one
after another in this one process, so their ratios compare like with like.

EDLNet rows use Elastic DL (the costlier second stage of the paper's schedule); ``vanilla``
rows the first stage. bf16 rows use autocast exactly as ``edlnet train --set precision=bf16``.
On CPUs without native bf16 convolutions (oneDNN without AVX512-BF16/AMX) PyTorch runs bf16
convolutions in a slow fallback, so bf16 rows there use ``--bf16-batch`` and one timed epoch.

Writes benchmarks/results/train_throughput.{json,md}. Command (about 15 minutes here):

    python benchmarks/train_throughput.py [--threads 2] [--batch 128] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from edlnet.layers.rista_fast import native_low_precision
from edlnet.records import environment
from edlnet.train.config import TrainConfig
from edlnet.train.loop import Trainer

OUT = Path(__file__).parent / "results"
NARROW = 16
ROWS = (  # (name, model width, dl mode)
    ("ResNet-18 narrow (width 16)", NARROW, None),
    ("EDLNet-18 narrow (width 16), vanilla", NARROW, "vanilla"),
    ("EDLNet-18 narrow (width 16), elastic", NARROW, "elastic"),
    ("ResNet-18 full width (64)", 64, None),
    ("EDLNet-18 full width (64), elastic", 64, "elastic"),
)


# The reproduction study's networks and objective (configs/reproduce/cpu.yaml): ResNet-10
# width 16, single-step adversarial training (FGSM with random start), 2 RISTA steps.
STUDY_ROWS = (
    ("ResNet-10 width 16", 16, None),
    ("EDLNet-10 width 16, vanilla", 16, "vanilla"),
    ("EDLNet-10 width 16, elastic", 16, "elastic"),
)
FGSM_RS = {"objective": "pgd_at", "attack_steps": 1, "attack_alpha": "10/255"}


def measure(
    name: str,
    width: int,
    dl: str | None,
    precision: str,
    batch: int,
    steps: int,
    repeats: int,
    threads: int,
    model: str = "resnet18",
    objective: dict | None = None,
) -> dict:
    cfg = TrainConfig(
        model=model,
        model_kwargs={"width": width},
        dl=dl,
        switch_to_elastic_epoch=None,
        train_subset=batch * steps,
        val_size=0,
        test_subset=1,
        epochs=1 + repeats,
        batch_size=batch,
        precision=precision,
        threads=threads,
        device="cpu",
        dl_options={"n_steps": 2} if dl else {},
        **(objective or {}),
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, run_dir=Path(tmp), progress=False)
        trainer.ddp = trainer._wrap()
        trainer.train_epoch(0)  # warm-up
        rates, secs = [], []
        for epoch in range(1, 1 + repeats):
            rec = trainer.train_epoch(epoch)
            rates.append(rec["images_per_s"])
            secs.append(rec["seconds"] / steps)
    row = {
        "name": name,
        "width": width,
        "dl": dl,
        "precision": precision,
        "batch": batch,
        "timed_steps": steps * repeats,
        "images_per_s": statistics.median(rates),
        "seconds_per_step": statistics.median(secs),
        "all_images_per_s": rates,
    }
    print(
        f"{name:42s} {precision:5s} batch {batch:3d}: {row['images_per_s']:8.1f} images/s "
        f"({row['seconds_per_step']:.2f} s/step)",
        flush=True,
    )
    return row


def to_markdown(record: dict) -> str:
    lines = [
        "# Training throughput on this machine",
        "",
        f"Command: `{record['command']}`",
        "",
        f"CPU: {record['cpu']}; torch {record['environment']['torch']}, "
        f"{record['threads']} threads; native bf16 convolutions: {record['native_bf16']}.",
        "",
        f"Objective: {record.get('objective', 'standard training')}.",
        "",
        "| model | precision | batch | images/s | s/step | vs the plain ResNet, same width+precision |",
        "|---|---|---|---|---|---|",
    ]
    base = {(r["width"], r["precision"]): r["images_per_s"] for r in record["rows"] if r["dl"] is None}
    for r in record["rows"]:
        ref = base.get((r["width"], r["precision"]))
        ratio = f"{ref / r['images_per_s']:.2f}× slower" if ref and r["dl"] else "—"
        lines.append(
            f"| {r['name']} | {r['precision']} | {r['batch']} | {r['images_per_s']:.1f} | "
            f"{r['seconds_per_step']:.2f} | {ratio} |"
        )
    lines += [
        "",
        "Training steps through the real Trainer with crop+flip augmentation, SGD; the median "
        "of timed epochs after one warm-up epoch. Adversarial training (PGD-k) costs about k+1 "
        "times as much per image as standard training.",
    ]
    if not record["native_bf16"]:
        lines += [
            "",
            "This CPU has no native bf16 convolutions (oneDNN without AVX512-BF16/AMX), so "
            "PyTorch runs bf16 convolutions through a slow fallback: bf16 rows are measured at a "
            "smaller batch and are far slower than fp32. Dictionary layers keep their convolutions "
            "in fp32 there (`conv_dtype='auto'`); the plain convolutions and the classifier still "
            "run in bf16 under autocast.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument(
        "--bf16-batch", type=int, default=32, help="batch of bf16 rows where bf16 convolutions are not native"
    )
    p.add_argument("--steps", type=int, default=2, help="batches per timed epoch")
    p.add_argument("--repeats", type=int, default=2, help="timed epochs (median)")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--rows", default="", help="comma-separated row indices (default: all)")
    p.add_argument("--out", default=str(OUT))
    p.add_argument(
        "--study",
        action="store_true",
        help="the reproduction study's networks (ResNet-10 width 16) and objective "
        "(FGSM-RS adversarial training); writes train_throughput_study.*",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    native = native_low_precision("cpu", torch.bfloat16)
    table = STUDY_ROWS if args.study else ROWS
    picked = [table[int(i)] for i in args.rows.split(",") if i] or list(table)
    model, objective = ("resnet10", FGSM_RS) if args.study else ("resnet18", None)
    rows = []
    for precision in args.precisions.split(","):
        slow = precision != "fp32" and not native
        batch = args.bf16_batch if slow else args.batch
        repeats = 1 if slow else args.repeats
        for name, width, dl in picked:
            rows.append(
                measure(
                    name,
                    width,
                    dl,
                    precision,
                    batch,
                    args.steps,
                    repeats,
                    args.threads,
                    model=model,
                    objective=objective,
                )
            )
    record = {
        "command": "python benchmarks/train_throughput.py " + " ".join(argv or sys.argv[1:]),
        "objective": "FGSM-RS adversarial training" if args.study else "standard training",
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "native_bf16": native,
        "environment": environment(),
        "rows": rows,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            record["cpu"] = next(
                line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "train_throughput_study" if args.study else "train_throughput"
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(record))
    print(to_markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
