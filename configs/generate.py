"""Writes configs/*.yaml (the paper's training experiments, full 200-epoch schedules).
Run: python configs/generate.py

CPU-scale experiments that actually learn and resist attacks are the reproduction study's
(configs/reproduce/cpu.yaml, run by benchmarks/reproduce.py), not shrunken copies of these:
at 2,000 images and 6 epochs the shrunken copies stayed near chance.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).parent
PAPER = dict(
    epochs=200,
    batch_size=128,
    lr=0.1,
    momentum=0.9,
    weight_decay=2e-5,
    schedule="step",
    milestones=[100, 150],
    eps="8/255",
    attack_steps=10,
    attack_alpha="2/255",
    val_attack_steps=10,
)


def dl(kind: str) -> dict:
    """plain: no dictionary layers; vanilla: Vanilla DL for all 200 epochs; elastic: two-stage."""
    return {
        "plain": {"dl": None, "switch_to_elastic_epoch": None},
        "vanilla": {"dl": "vanilla", "switch_to_elastic_epoch": None},
        "elastic": {"dl": "vanilla", "switch_to_elastic_epoch": 150},
    }[kind]


def experiments() -> dict[str, dict]:
    out: dict[str, dict] = {}
    # Table 3: PGD-AT ResNet-18 CIFAR-10 with robust-overfitting baselines.
    t3 = {
        "vanilla": {},
        "l1": {"l1_penalty": 5e-7},
        "l2": {"l2_penalty": 5e-4},
        "l1_l2": {"l1_penalty": 5e-7, "l2_penalty": 5e-4},
        "cutout": {"cutout": 16},
        "mixup": {"mixup_alpha": 1.0},
        "early_stopping": {"early_stop_patience": 10},
    }
    for name, extra in t3.items():
        out[f"table3_{name}"] = {"objective": "pgd_at", **dl("plain"), **extra}
    out["table3_vanilla_dl"] = {"objective": "pgd_at", **dl("vanilla")}
    out["table3_elastic_dl"] = {"objective": "pgd_at", **dl("elastic")}
    # Table 4: adversarial training methods × {plain, + Vanilla DL, + Elastic DL}.
    objectives = {
        "pgd_at": {"objective": "pgd_at"},
        "trades2": {"objective": "trades", "objective_options": {"beta": 2.0}},
        "trades02": {"objective": "trades", "objective_options": {"beta": 0.2}},
        "mart": {"objective": "mart"},
        "port": {
            "objective": "trades",
            "objective_options": {"beta": 6.0},
            "extra_data": "data/cifar10_ddpm.npz",
            "extra_ratio": 0.5,
        },
        "hat": {
            "objective": "hat",
            "objective_options": {"std_model": "runs/table4_standard/checkpoints/best"},
        },
    }
    out["table4_standard"] = {"objective": "standard", **dl("plain")}
    for name, obj in objectives.items():
        for kind in ("plain", "vanilla", "elastic"):
            out[f"table4_{name}_{kind}"] = {**obj, **dl(kind)}
    # Table 6: ℓ2 adversarial training of PORT and HAT (ε = 0.5).
    for name in ("port", "hat"):
        for kind in ("plain", "vanilla", "elastic"):
            out[f"table6_{name}_{kind}"] = {
                **objectives[name],
                **dl(kind),
                "attack_norm": "L2",
                "eps": "1/2",
                "attack_alpha": "1/8",
            }
    # Tables 8–10: PGD-AT across backbones and datasets.
    datasets = {
        "table8": {"dataset": "cifar10"},
        "table9": {"dataset": "cifar100", "model_kwargs": {"stats": "cifar100"}},
        "table10": {"dataset": "tinyimagenet", "model_kwargs": {"input_size": 64, "stats": "tinyimagenet"}},
    }
    for table, ds in datasets.items():
        for depth in (10, 18, 34, 50):
            for kind in ("vanilla", "elastic"):
                out[f"{table}_resnet{depth}_{kind}"] = {
                    "objective": "pgd_at",
                    "model": f"resnet{depth}",
                    **ds,
                    **dl(kind),
                }
    return out


def main() -> None:
    for name, exp in experiments().items():
        full = {"model": "resnet18", "dataset": "cifar10", **PAPER, **exp, "name": name}
        (HERE / f"{name}.yaml").write_text(
            f"# {name}: the paper's setting (python configs/generate.py)\n"
            + yaml.safe_dump(full, sort_keys=False)
        )


if __name__ == "__main__":
    main()
