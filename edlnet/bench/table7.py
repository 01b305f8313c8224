"""``edlnet bench``: Table 7 of the Elastic DL paper on this machine — forward and
forward+backward time per batch of ResNet-18 with the first N = 0, 2, …, 14 convolutions (module
order) replaced by Vanilla and by Elastic dictionary layers — beside the paper's numbers.

Timing: one priming call (the first eval forward of a dictionary layer computes ‖A‖₂ from
scratch) and ``warmup`` untimed calls, then ``repeats`` timed calls; the median is reported (robust
to a busy machine), with images/s = batch / median. Forward runs in eval mode under
``torch.no_grad`` (inference, what the paper's table times); forward+backward runs in training
mode (batch statistics, the dictionary norm refresh) with a cross-entropy loss, as one training
step without the optimizer. CUDA work is synchronized before the clock is read. Precision:
fp32, or bf16 autocast. Peak memory: see :mod:`edlnet.bench.measure`.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..layers.dict_conv import dict_layers
from ..models.registry import create_model
from ..records import environment, timestamp, write_json
from ..tables import Table, write_table
from .measure import autocast_for, median_seconds, peak_step_memory

# The paper's Table 7, "Running time (ms) analysis", as printed in Zhong et al., "Boosting
# Adversarial Robustness and Generalization with Structural Prior" (the Elastic DL paper); kept
# beside our measurements, never used as inputs. The paper states neither hardware, batch size,
# precision nor T for this table.
TABLE7_SOURCE = (
    "Elastic DL paper, Table 7 (running time in ms, ResNet-18 backbone; hardware, "
    "batch size, precision and RISTA steps not stated)"
)
TABLE7_LAYERS = (0, 2, 4, 6, 8, 10, 12, 14)
TABLE7_MS = {
    "vanilla": (7.82, 8.40, 9.28, 10.51, 12.13, 13.11, 14.16, 15.40),
    "elastic": (7.82, 8.90, 11.39, 13.18, 15.99, 16.86, 19.57, 21.94),
}


def table7_ms(mode: str, layers: int) -> float | None:
    """The paper's time for ``mode`` (vanilla/elastic; 0 layers is the ResNet) or ``None``."""
    if layers not in TABLE7_LAYERS:
        return None
    key = "vanilla" if mode in ("resnet", "plain") else mode
    values = TABLE7_MS.get(key)
    return None if values is None else values[TABLE7_LAYERS.index(layers)]


MODES = ("vanilla", "elastic")


@dataclass
class BenchSettings:
    model: str = "resnet18"
    width: int = 64
    batch: int = 128
    repeats: int = 10
    warmup: int = 2
    layers_list: tuple[int, ...] = TABLE7_LAYERS
    modes: tuple[str, ...] = MODES
    precision: str = "fp32"
    device: str = "auto"
    n_steps: int | None = None  # RISTA steps (None: the layer default)
    seed: int = 0

    def validate(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"--precision must be fp32 or bf16, got {self.precision!r}")
        if min(self.width, self.batch, self.repeats) < 1 or self.warmup < 0:
            raise ValueError("--width, --batch and --repeats must be >= 1 and --warmup >= 0")
        if any(n < 0 for n in self.layers_list):
            raise ValueError(f"--layers-list must hold numbers >= 0, got {self.layers_list}")
        bad = [m for m in self.modes if m not in ("vanilla", "robust", "elastic")]
        if bad:
            raise ValueError(f"unknown dictionary mode(s) {bad}; use vanilla, robust, elastic")


def bench_one(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, s: BenchSettings, device: torch.device
) -> dict[str, Any]:
    """Forward and forward+backward medians and peak memory of one model."""
    cast = autocast_for(s.precision, device)

    def forward() -> None:
        with torch.no_grad(), cast():
            model(x)

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        with cast():
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()

    model.eval()
    # One untimed call whatever --warmup says: the first eval forward of a dictionary layer
    # computes its ‖A‖₂ from scratch (cold power iteration), a one-off cost that is not the
    # layer's running time.
    forward()
    fwd = median_seconds(forward, s.repeats, s.warmup, device)
    fwd_mem, method = peak_step_memory(forward, device)
    model.train()
    step = median_seconds(train_step, s.repeats, s.warmup, device)
    step_mem, _ = peak_step_memory(train_step, device)
    return {
        "forward_ms": fwd * 1e3,
        "forward_backward_ms": step * 1e3,
        "forward_images_per_s": s.batch / fwd,
        "train_images_per_s": s.batch / step,
        "forward_peak_mb": fwd_mem,
        "train_peak_mb": step_mem,
        "memory_method": method,
    }


def configurations(s: BenchSettings) -> list[tuple[int, str]]:
    """(layers, mode) pairs: 0 layers is the plain ResNet, timed once."""
    out = []
    for n in s.layers_list:
        out += [(0, "resnet")] if n == 0 else [(n, m) for m in s.modes]
    return out


def run_bench(s: BenchSettings, log: bool = True) -> dict[str, Any]:
    """Time every configuration; returns the full record (settings, environment, rows)."""
    from ..train.distributed import resolve_device

    s.validate()
    device = resolve_device(s.device)
    plain = create_model(s.model, width=s.width)
    available = sum(isinstance(m, torch.nn.Conv2d) for m in plain.modules())
    if max(s.layers_list, default=0) > available:
        raise ValueError(
            f"{s.model} has only {available} convolutions to replace, asked for "
            f"{max(s.layers_list)}; lower --layers-list"
        )
    dl_kwargs = {} if s.n_steps is None else {"n_steps": s.n_steps}
    gen = torch.Generator().manual_seed(s.seed)
    x = torch.rand(s.batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (s.batch,), generator=gen).to(device)
    rows = []
    for n, mode in configurations(s):
        torch.manual_seed(s.seed)
        if n == 0:
            model = create_model(s.model, width=s.width)
        else:
            model = create_model(s.model, dl=mode, dl_layers=n, width=s.width, **dl_kwargs)
        assert len(dict_layers(model)) == n, "create_model(dl_layers=N) must replace N convolutions"
        timing = bench_one(model.to(device), x, y, s, device)
        rows.append({"layers": n, "mode": mode, **timing, "paper_ms": table7_ms(mode, n)})
        if log:
            print(
                f"bench: {n:2d} layers {mode:8s} forward {timing['forward_ms']:.2f} ms, "
                f"forward+backward {timing['forward_backward_ms']:.2f} ms",
                file=sys.stderr,
                flush=True,
            )
        del model
    base = next((r for r in rows if r["layers"] == 0), None)
    for r in rows:
        r["forward_ratio"] = r["forward_ms"] / base["forward_ms"] if base else None
        r["paper_ratio"] = (r["paper_ms"] / table7_ms("resnet", 0)) if r["paper_ms"] else None
    return {
        "settings": {
            **asdict(s),
            "layers_list": list(s.layers_list),
            "modes": list(s.modes),
            "device_resolved": str(device),
        },
        "environment": environment(),
        "finished": timestamp(),
        "rows": rows,
        "paper": {"source": TABLE7_SOURCE},
    }


def bench_tables(record: dict[str, Any]) -> list[Table]:
    """The detailed table and a Table 7-shaped comparison with the paper."""
    s = record["settings"]
    rows = record["rows"]
    what = (
        f"{s['model']} width {s['width']}, batch {s['batch']}, {s['precision']}, "
        f"{s['device_resolved']}, median of {s['repeats']} after {s['warmup']} warm-up"
    )
    detail = Table(
        name="bench_rows",
        title=f"Running time per batch (Table 7) — {what}",
        columns=[
            "layers",
            "mode",
            "forward_ms",
            "forward_backward_ms",
            "forward_images_per_s",
            "train_images_per_s",
            "forward_peak_mb",
            "train_peak_mb",
            "forward_ratio",
            "paper_ms",
            "paper_ratio",
        ],
        rows=rows,
        notes=[
            "layers: the first N convolutions of the model (module order) replaced by "
            "dictionary layers of the given mode; 0 = the plain ResNet.",
            "forward: eval mode, no_grad; forward_backward: training mode, cross-entropy "
            "backward (no optimizer step).",
            f"peak memory: {rows[0]['memory_method'] if rows else '–'} (MB added by the step).",
            "forward_ratio = forward time / the plain ResNet's; paper_ratio the same for the "
            "paper's numbers: ratios, not milliseconds, are comparable across machines.",
            f"paper: {record['paper']['source']}.",
        ],
        meta={"settings": s},
    )
    pivot = []
    for n in sorted({r["layers"] for r in rows}):
        row: dict[str, Any] = {"layers": n}
        for mode in ("vanilla", "elastic"):
            match = [r for r in rows if r["layers"] == n and r["mode"] in (mode, "resnet")]
            row[f"{mode}_ms"] = match[0]["forward_ms"] if match else None
            row[f"{mode}_paper_ms"] = table7_ms(mode, n)
        pivot.append(row)
    comparison = Table(
        name="bench_table7",
        title="Forward time (ms) next to the paper's Table 7",
        columns=["layers", "vanilla_ms", "vanilla_paper_ms", "elastic_ms", "elastic_paper_ms"],
        rows=pivot,
        notes=[f"Ours: {what}. Paper: {record['paper']['source']}."],
    )
    return [detail, comparison]


def write_bench(record: dict[str, Any], out_dir: str | Path) -> Path:
    """``bench.json`` (the full record) and the tables as JSON + Markdown in ``out_dir``."""
    out_dir = Path(out_dir)
    write_json(out_dir / "bench.json", record)
    for table in bench_tables(record):
        write_table(table, out_dir)
    return out_dir
