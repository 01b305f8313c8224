"""Paired A/B of a change to the compiled layer's iteration, in one process, in minutes.

A change to :mod:`edlnet.layers.rista_functional` (the autograd.Function that ``torch.compile``
fuses) moves a layer's time by a few percent at most, less than ``edlnet bench --layers``
resolves between two runs of 17 minutes on a loaded 2-core machine. This script times the
checkout's ``RistaIteration`` (A) and one or more edited copies of that file (B, C, ...) in the
same process, in the same round-robin rounds, beside the convolution floor, so that drifting
load cancels in the per-round ratios:

* each variant file is loaded as a module of ``edlnet.layers`` (its relative imports resolve to
  this checkout), and its ``RistaIteration`` is put in :mod:`edlnet.layers.rista_compiled` before
  each call; Dynamo guards on that global, so it compiles one graph per variant and picks it;
* before timing, every variant's output and gradients are checked against A's (the same
  mathematics: fp32 to 1e-4 relative, bf16 to 5e-2), and the compile count is checked to
  have grown once per variant (a variant that silently reused A's graph would compare A
  with itself);
* per shape: variant ÷ A and each ÷ floor, medians of per-round ratios with distribution-free
  95% intervals (:func:`edlnet.bench.measure.paired_ratio`).

Command::

    python benchmarks/variant_ab.py --variant NAME=path/to/rista_functional.py [...] \\
        --shapes 16x32 --formats channels_last --out benchmarks/results/<name>

writes ``variant_ab.{json,md}`` and each variant's diff against the checkout (``NAME.diff``).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import importlib.util
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compiled_layer_profile import N_STEPS, compiled_case

import edlnet.layers.rista_compiled as rista_compiled
from edlnet.allocator import keep_freed_memory
from edlnet.bench.layers import _floor_case, _layer_case
from edlnet.bench.measure import autocast_for, paired_ratio, summary_text, time_round_robin
from edlnet.records import environment, write_json

BASE = ROOT / "edlnet" / "layers" / "rista_functional.py"
TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2}


def load_variant(name: str, path: Path) -> type:
    """The ``RistaIteration`` of an edited copy of rista_functional.py, loaded as a module of
    ``edlnet.layers`` (registered in sys.modules: Dynamo imports what it guards on)."""
    spec = importlib.util.spec_from_file_location(f"edlnet.layers._variant_{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--variant {name}={path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.RistaIteration


def _with_iteration(cls: type, fn):
    def run():
        rista_compiled.RistaIteration = cls  # the global rista_iteration traces (Dynamo guards it)
        return fn()

    return run


def _outputs(layer: torch.nn.Module, x: torch.Tensor, g: torch.Tensor, precision: str) -> list[torch.Tensor]:
    with autocast_for(precision, x.device)():
        y = layer(x)
    y.backward(g)
    out = [y.detach().float(), x.grad.float()] + [
        p.grad.float() for p in layer.parameters() if p.grad is not None
    ]
    x.grad = None
    layer.zero_grad(set_to_none=True)
    return out


def compare_case(
    channels: int, size: int, fmt: str, variants: dict[str, type], opt: argparse.Namespace
) -> dict:
    x, g, w, layer = compiled_case(channels, size, opt.batch, fmt)
    frames = torch._dynamo.utils.counters["frames"]
    reference, mismatch = None, {}
    state = copy.deepcopy(layer.state_dict())  # the norm's power iteration moves on every call
    for name, cls in variants.items():
        layer.load_state_dict(state)
        before = frames["ok"]
        outs = _with_iteration(cls, lambda: _outputs(layer, x, g, opt.precision))()
        if name != "A" and frames["ok"] == before:
            raise SystemExit(
                f"variant {name} compiled no graph of its own: its RistaIteration was not traced"
            )
        if reference is None:
            reference = outs
            continue
        worst = max(
            float((o - r).abs().max() / r.abs().max().clamp_min(1e-30)) for o, r in zip(outs, reference)
        )
        if worst > TOLERANCE[opt.precision]:
            raise SystemExit(
                f"variant {name} differs from A by {worst:.2e} (relative): not the same mathematics"
            )
        mismatch[name] = worst
    cases = {"floor": _floor_case(x, w, g, N_STEPS, opt.precision)}
    cases.update(
        {
            name: _with_iteration(cls, _layer_case(layer, x, g, opt.precision))
            for name, cls in variants.items()
        }
    )
    t = time_round_robin(cases, opt.rounds, warmup=2)
    times = {k: v["times_s"] for k, v in t.items()}
    return dict(
        channels=channels,
        size=size,
        batch=opt.batch,
        memory_format=fmt,
        precision=opt.precision,
        median_s={k: v["median_s"] for k, v in t.items()},
        over_floor={k: paired_ratio(times[k], times["floor"]) for k in variants},
        over_a={k: paired_ratio(times[k], times["A"]) for k in variants if k != "A"},
        max_relative_difference=mismatch,
        times_s=times,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--variant", action="append", required=True, metavar="NAME=PATH", help="an edited rista_functional.py"
    )
    p.add_argument("--shapes", default="16x32", help="channels x size, comma-separated")
    p.add_argument("--formats", default="channels_last", help="channels_last, contiguous, or both")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as edlnet bench
    variants: dict[str, type] = {"A": rista_compiled.RistaIteration}
    diffs = {}
    for item in args.variant:
        name, _, path = item.partition("=")
        if not name.isidentifier() or name == "A" or not path:
            p.error(f"--variant {item!r}: give NAME=PATH with a NAME other than A")
        variants[name] = load_variant(name, Path(path))
        diffs[name] = "".join(
            difflib.unified_diff(
                BASE.read_text().splitlines(keepends=True),
                Path(path).read_text().splitlines(keepends=True),
                "a/edlnet/layers/rista_functional.py",
                "b/edlnet/layers/rista_functional.py",
            )
        )
    rows = []
    try:
        for item in args.shapes.split(","):
            channels, size = (int(v) for v in item.split("x"))
            for fmt in args.formats.split(","):
                rows.append(compare_case(channels, size, fmt, variants, args))
                print(markdown_rows([rows[-1]]), flush=True)
    finally:
        rista_compiled.RistaIteration = variants["A"]
    record = dict(
        command="python benchmarks/variant_ab.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        environment=environment(),
        options=dict(batch=args.batch, rounds=args.rounds, threads=args.threads, n_steps=N_STEPS),
        rows=rows,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in diffs.items():
        (args.out / f"{name}.diff").write_text(text)
    write_json(args.out / "variant_ab.json", record)
    (args.out / "variant_ab.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def markdown_rows(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        for name, over_floor in r["over_floor"].items():
            over_a = summary_text(r["over_a"][name], 3) if name in r["over_a"] else "–"
            lines.append(
                f"| {r['channels']}→{r['channels']} @ {r['size']}×{r['size']} | {r['precision']} | "
                f"{r['memory_format']} | {name} | {1e3 * r['median_s'][name]:.1f} | {summary_text(over_floor, 3)} | {over_a} |"
            )
    return "\n".join(lines)


def markdown(record: dict) -> str:
    env, opt = record["environment"], record["options"]
    return "\n".join(
        [
            "# Variants of the compiled iteration, paired in one process",
            "",
            f"`{record['command']}` — torch {env['torch']}, CPU {env['cpu']} ({env['cpu_capability']}), "
            f"{opt['threads']} threads, commit {env['git_commit']}.",
            "",
            f"One elastic `DictConv2d(impl='compiled')`, n_steps {opt['n_steps']}, forward+backward, batch "
            f"{opt['batch']}; A is this checkout's `RistaIteration`, the others the edited files whose diffs "
            f"lie beside this table. {opt['rounds']} round-robin rounds of the floor and every variant; "
            "medians of per-round ratios [95% interval].",
            "",
            "| shape | precision | format | variant | median (ms) | ÷ floor | ÷ A |",
            "|---|---|---|---|---|---|---|",
            markdown_rows(record["rows"]),
            "",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
