"""``benchmark``: RobustBench's protocol on the first pixel-exact CIFAR-10 test images.

RobustBench (Croce et al. 2021) reports AutoAttack (standard version) robust accuracy on the
first test images of the official release, at 8/255 in Linf or 0.5 in L2. ``benchmark``
mirrors its call, ``benchmark(model, n_examples, dataset, threat_model, eps)``, on this
library's conventions: the model takes images in [0, 1]; AutoAttack runs under both
reweighting-gradient policies of dictionary layers (per-example worst case), with its Square
part once; the gradient-masking checks run too. Two numbers come back:
``record["autoattack_standard"]`` — AutoAttack standard under the model's true gradients,
comparable with RobustBench's leaderboard — and ``record["worst_case"]``, edlnet's stricter
per-example worst case over both policies and the checks' attacks. The bundled sample holds the first 1,000 test images
pixel-exact; more need the official CIFAR-10 download (``dataset="cifar10", data_root=...``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from edlnet.attacks import parse_eps

from .runner import evaluate
from .suite import eps_text

THREAT_MODELS = {"Linf": "8/255", "L2": "0.5"}


def first_test_images(
    dataset: str = "cifar10-sample", n_examples: int = 1000, data_root: str | Path | None = None
) -> tuple[Tensor, Tensor, str]:
    """The first ``n_examples`` test images (uint8) and labels, pixel-exact, and a label.

    ``dataset`` is a name for :func:`edlnet.data.load_dataset` or the path of an ``.npz`` with
    ``x_test_first``/``y_test_first`` (the shared pixel-exact CIFAR-10 subset, NHWC).
    """
    path = Path(str(dataset)).expanduser()
    if path.suffix == ".npz" and path.exists():
        with np.load(path, allow_pickle=False) as data:
            if "x_test_first" in data.files:
                x = torch.from_numpy(np.ascontiguousarray(data["x_test_first"].transpose(0, 3, 1, 2)))
                y = torch.from_numpy(data["y_test_first"].astype(np.int64))
                return _first(x, y, n_examples, f"{path.name} (pixel-exact first test images)")
    from edlnet.data import load_dataset

    data = load_dataset(dataset, data_root)
    if "jpeg" in data.name.lower():
        raise ValueError(
            f"{data.name} is re-encoded, not pixel-exact; RobustBench numbers need the "
            "official pixels: use dataset='cifar10-sample' (first 1,000 test images) "
            "or dataset='cifar10' with data_root=<official CIFAR-10 download>"
        )
    return _first(data.x_test, data.y_test, n_examples, data.name)


def _first(x: Tensor, y: Tensor, n: int, name: str) -> tuple[Tensor, Tensor, str]:
    if n < 1 or n > x.shape[0]:
        raise ValueError(
            f"{name} has {x.shape[0]} test images, n_examples={n} asked; for more than "
            "1,000 use dataset='cifar10' with data_root=<official CIFAR-10 download>"
        )
    return x[:n], y[:n], name


def benchmark(
    model: nn.Module,
    n_examples: int = 1000,
    dataset: str = "cifar10-sample",
    threat_model: str = "Linf",
    eps: float | str | None = None,
    *,
    data_root: str | Path | None = None,
    batch_size: int = 100,
    seed: int = 0,
    w_grad: str = "both",
    surrogate: nn.Module | None = None,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """AutoAttack (standard) robust accuracy on the first ``n_examples`` test images.

    ``threat_model`` is ``"Linf"`` (default eps 8/255) or ``"L2"`` (0.5), as in RobustBench.
    Returns the :func:`evaluate` record with ``record["robustbench"]``: the clean accuracy,
    the AutoAttack-standard robust accuracy (RobustBench's number), edlnet's worst case, the
    number of images and the checks' summary; ``record["checks"]`` says whether to trust them.
    """
    if threat_model not in THREAT_MODELS:
        raise ValueError(
            f"threat_model must be one of {sorted(THREAT_MODELS)}, got {threat_model!r} "
            "(corruption benchmarks: use a suite with corruption entries)"
        )
    frac, _ = parse_eps(THREAT_MODELS[threat_model] if eps is None else eps)
    x, y, name = first_test_images(dataset, n_examples, data_root)
    label = f"{threat_model} {eps_text(frac)}"
    suite = {
        "name": f"robustbench-{threat_model}",
        "description": f"RobustBench protocol: AutoAttack (standard) at {label} on the first "
        f"{n_examples} test images of {name}.",
        "main": {"norm": threat_model, "eps": str(frac)},
        "entries": [
            {
                "name": f"AutoAttack {label}",
                "attack": "autoattack",
                "norm": threat_model,
                "eps": str(frac),
                "settings": {"version": "standard"},
                "w_grad": w_grad,
            }
        ],
    }
    info = {
        "dataset": name,
        "images": f"first {n_examples} test images",
        "protocol": "RobustBench benchmark: AutoAttack standard",
        "threat_model": threat_model,
        "eps": float(frac),
        "eps_exact": str(frac),
    }
    record = evaluate(
        model,
        x,
        y,
        suite=suite,
        batch_size=batch_size,
        seed=seed,
        surrogate=surrogate,
        out_dir=out_dir,
        log=log,
        info=info,
    )
    aa = next(iter(record["autoattack_standard"].values()), None)
    record["robustbench"] = {
        "clean": record["clean"],
        "autoattack_standard": None if aa is None else aa["accuracy"],
        "autoattack_policy": None if aa is None else aa["policy"],
        "worst_case": record["worst_case"],
        "n_examples": n_examples,
        "images": f"first {n_examples} test images of {name}",
        "checks": record["checks_summary"]["line"],
    }
    if log is not None:
        rb = record["robustbench"]
        aa_text = "n/a" if rb["autoattack_standard"] is None else f"{rb['autoattack_standard']:.4f}"
        log(
            f"benchmark on the {rb['images']}: clean {rb['clean']:.4f}, AutoAttack standard "
            f"({rb['autoattack_policy']} gradients) {aa_text}, edlnet worst case "
            f"{rb['worst_case']:.4f}; checks: {rb['checks']}"
        )
    return record
