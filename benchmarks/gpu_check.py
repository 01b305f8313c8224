"""One command for a machine with a CUDA GPU: does edlnet work there? About 5 minutes.

    python benchmarks/gpu_check.py [--out DIR] [--cpu-only] [--require-gpu]

Checks, on ``cuda`` (on the CPU with ``--cpu-only`` or when there is no CUDA device, with the
GPU-only checks recorded as skipped and the reason):

* ``fast_equals_reference_float64`` — the fast RISTA path against the autograd reference in
  float64 (outputs and every gradient; vanilla, robust, elastic; strides 1, 2; both
  reweighting-gradient policies; numbers and tensors as scalars).
* ``low_precision_within_tolerance`` — bf16 and fp16 autocast against fp32, outputs and
  gradients within a relative tolerance; fp16 convolutions save fp32 codes.
* ``no_host_sync`` (GPU only) — a warm DictConv2d training step under
  ``torch.cuda.set_sync_debug_mode("error")``: nothing reads a value back to the host.
* ``batch_independence`` — an EDLNet's eval outputs for a batch equal those of its examples
  one at a time.
* ``save_load_across_devices`` — save on the device, load on the CPU and on the device: same
  outputs.
* ``compile_fullgraph`` (GPU only) — ``torch.compile(fullgraph=True)`` (inductor) of an EDLNet-18
  forward+backward equals eager.
* ``table7`` and ``layer_bench`` — ``edlnet bench`` and ``edlnet bench --layers`` with small
  options (their own folders under ``--out``).
* ``train_and_resume`` — ``edlnet train`` for 2 epochs, and 1 epoch then ``--resume`` to 2: the
  same weights (bitwise on the CPU; on CUDA with deterministic cuDNN, within 1e-5).
* ``quick_eval`` — ``edlnet eval`` of that run (the ``quick`` suite on the GPU, a tiny suite on
  the CPU).
* ``torchrun_nccl`` (2+ GPUs only) — a 2-rank NCCL training run with identical parameters.

Writes ``gpu_check.json`` and ``gpu_check.md`` (GPU name, versions, each check with its status,
seconds and detail). Exit status 1, with every failure printed, when any check fails; 2 when a
GPU is visible (``nvidia-smi``) but torch cannot use it, or with ``--require-gpu`` and no CUDA.
Nothing is skipped silently: each skip is in the record with its reason.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
import torch.nn.functional as F

import edlnet
from edlnet.cli import main as edlnet_main

BUDGET_SECONDS = 8 * 60


class CheckFailed(AssertionError):
    """A check ran and found something wrong."""


class Skip(Exception):
    """A check that cannot run here; the reason goes into the record."""


@dataclass
class Context:
    device: torch.device
    out: Path
    gpu: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class Result:
    name: str
    status: str  # passed | failed | skipped
    seconds: float
    detail: str


CHECKS: list[tuple[str, Callable[[Context], str]]] = []


def check(fn: Callable[[Context], str]) -> Callable[[Context], str]:
    CHECKS.append((fn.__name__, fn))
    return fn


def expect(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


# -- numerics -----------------------------------------------------------------------------------
@check
def fast_equals_reference_float64(ctx: Context) -> str:
    from edlnet.layers.rista import rista
    from edlnet.layers.rista_fast import rista_fast

    d64, worst, cases = torch.float64, 0.0, 0
    g = torch.Generator().manual_seed(0)
    for kind in ("vanilla", "robust", "elastic", "elastic_tensor_step"):
        for stride in (1, 2):
            for w_grad in ("exact", "detached"):
                x = torch.randn(2, 3, 9, 10, dtype=d64, generator=g).to(ctx.device).requires_grad_()
                w = (torch.randn(6, 3, 3, 3, dtype=d64, generator=g) * 0.3).to(ctx.device).requires_grad_()
                logit = torch.tensor(-0.3, dtype=d64, device=ctx.device, requires_grad=True)
                norm = torch.tensor(1.6, dtype=d64, device=ctx.device, requires_grad=True)
                gz = None
                outs = []
                for fn in (rista, rista_fast):
                    beta = {"vanilla": 1.0, "robust": 0.0}.get(kind)
                    beta = torch.sigmoid(logit) if beta is None else beta
                    step = 0.3 / (beta + (1 - beta) / 0.1) if kind == "elastic_tensor_step" else 0.1
                    kw = dict(
                        n_steps=3,
                        beta=beta,
                        lam=0.05,
                        step=step,
                        eps=0.05,
                        stride=stride,
                        padding=1,
                        w_grad=w_grad,
                    )
                    z = rista(x, w / norm, **kw) * norm if fn is rista else rista_fast(x, w, norm=norm, **kw)
                    if gz is None:
                        gz = torch.randn(z.shape, dtype=d64, generator=g).to(ctx.device)
                    leaves = [x, w, norm] + ([logit] if kind.startswith("elastic") else [])
                    outs.append((z, torch.autograd.grad((z * gz).sum(), leaves)))
                (z0, g0), (z1, g1) = outs
                worst = max(worst, rel_err(z1, z0), *(rel_err(a, b) for a, b in zip(g1, g0)))
                cases += 1
    expect(worst < 1e-10, f"largest relative difference {worst:.3g} (tolerance 1e-10)")
    return f"{cases} cases, largest relative difference {worst:.2e} (tolerance 1e-10)"


@check
def low_precision_within_tolerance(ctx: Context) -> str:
    from edlnet.layers.rista_fast import _Config, _forward

    torch.manual_seed(0)
    layer = edlnet.DictConv2d(16, 32, 3, padding=1, mode="elastic").to(ctx.device).train()
    x = torch.rand(8, 16, 16, 16, device=ctx.device)
    layer(x)  # cold start of the power iteration, in fp32
    parts = []
    outs = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        lay = copy.deepcopy(layer)
        xi = x.clone().requires_grad_()
        if dtype is None:
            y = lay(xi)
        else:
            with torch.autocast(ctx.device.type, dtype=dtype):
                y = lay(xi)
        y.float().square().sum().backward()
        outs[name] = (y.float().detach(), xi.grad, lay.weight.grad, lay.beta_logit.grad)
    tol = {"bf16": 5e-2, "fp16": 1e-2}
    for name in ("bf16", "fp16"):
        errs = [rel_err(a, b) for a, b in zip(outs[name], outs["fp32"])]
        expect(
            max(errs) < tol[name],
            f"{name}: relative errors (output, dx, dW, dβ) "
            f"{', '.join(f'{e:.2e}' for e in errs)} exceed {tol[name]}",
        )
        parts.append(f"{name}: max relative error {max(errs):.2e} (tolerance {tol[name]})")
    cfg = _Config(
        n_steps=2,
        eps=0.1,
        stride=(1, 1),
        padding=(1, 1),
        dilation=(1, 1),
        groups=1,
        nonneg=False,
        exact=True,
        vanilla=True,
        recompute=False,
        state_dtype=torch.float32,
        conv_dtype=torch.float16,
        out_dtype=torch.float32,
    )
    from edlnet.layers.rista_fast import _Scalars

    _, zs, _ = _forward(x, layer.weight.detach().half(), cfg, _Scalars(1.0, 0.1, 0.5, None), keep=True)
    expect(
        all(z.dtype == torch.float32 for z in zs),
        f"fp16 convolutions saved codes in {[str(z.dtype) for z in zs]}, expected float32 (threshold masks)",
    )
    return "; ".join(parts) + "; fp16 saved codes are float32"


@check
def no_host_sync(ctx: Context) -> str:
    if not ctx.gpu:
        raise Skip(
            "needs CUDA (torch.cuda.set_sync_debug_mode); on the CPU tests/test_rista_scalars.py "
            "checks that no tensor is read back"
        )
    layer = edlnet.DictConv2d(16, 16, 3, padding=1, mode="elastic").to(ctx.device).train()
    x = torch.rand(4, 16, 16, 16, device=ctx.device)
    layer(x).sum().backward()  # the cold start reads σ for its stopping test
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        layer(x).sum().backward()
    except RuntimeError as e:
        raise CheckFailed(f"a DictConv2d training step synchronized with the host: {e}") from None
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return "a warm elastic DictConv2d forward+backward ran under set_sync_debug_mode('error')"


@check
def batch_independence(ctx: Context) -> str:
    torch.manual_seed(0)
    model = edlnet.create_model("resnet10", width=8, dl="elastic").to(ctx.device)
    model.train()(torch.rand(4, 3, 32, 32, device=ctx.device))  # norms known
    model.eval()
    x = torch.rand(6, 3, 32, 32, device=ctx.device)
    with torch.no_grad():
        whole = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(len(x))])
    err = float((whole - single).abs().max())
    expect(err < 1e-4, f"batch of 6 vs one at a time differ by {err:.3g} (tolerance 1e-4)")
    return f"max |batch − single| = {err:.2e}"


@check
def save_load_across_devices(ctx: Context) -> str:
    torch.manual_seed(0)
    model = edlnet.create_model("resnet10", width=8, dl="elastic").to(ctx.device)
    model.train()(torch.rand(4, 3, 32, 32, device=ctx.device))
    model.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        ref = model(x.to(ctx.device)).cpu()
    with tempfile.TemporaryDirectory() as tmp:
        edlnet.save(model, tmp)
        on_device = edlnet.load(tmp, map_location=ctx.device)
        on_cpu = edlnet.load(tmp, map_location="cpu")
    with torch.no_grad():
        same = on_device(x.to(ctx.device)).cpu()
        cpu = on_cpu(x)
    expect(torch.equal(same, ref), "reloaded on the same device, outputs differ")
    err = float((cpu - ref).abs().max())
    expect(err < 1e-4, f"loaded on the CPU, outputs differ by {err:.3g} (tolerance 1e-4)")
    return f"same device: bitwise equal; {ctx.device} -> cpu: max difference {err:.2e}"


@check
def compile_fullgraph(ctx: Context) -> str:
    if not ctx.gpu:
        raise Skip(
            "inductor compile of EDLNet-18 takes minutes on a CPU; tests/test_rista_scalars.py "
            "compiles it with fullgraph=True (aot_eager) there"
        )
    torch.manual_seed(0)
    torch._dynamo.reset()
    model = edlnet.create_model("resnet18", dl="elastic", width=8).to(ctx.device).train()
    x, y = torch.rand(8, 3, 32, 32, device=ctx.device), torch.randint(0, 10, (8,), device=ctx.device)
    model(x)
    eager = copy.deepcopy(model)
    compiled = torch.compile(model, fullgraph=True)
    F.cross_entropy(compiled(x), y).backward()
    F.cross_entropy(eager(x), y).backward()
    err = max(
        rel_err(p.grad, q.grad)
        for p, q in zip(model.parameters(), eager.parameters())
        if q.grad is not None and q.grad.abs().sum() > 0
    )
    expect(err < 1e-3, f"compiled gradients differ from eager by {err:.3g} (relative, tolerance 1e-3)")
    return f"inductor, fullgraph=True; largest relative gradient difference {err:.2e}"


# -- commands -----------------------------------------------------------------------------------
def run_cli(argv: list[str]) -> None:
    code = edlnet_main([str(a) for a in argv])
    expect(code == 0, f"edlnet {' '.join(map(str, argv))} exited with {code}")


@check
def table7(ctx: Context) -> str:
    out = ctx.out / "table7"
    small = (
        ["--width", 16, "--batch", 32, "--repeats", 3, "--warmup", 1, "--layers-list", "0,2,14"]
        if ctx.gpu
        else ["--width", 4, "--batch", 2, "--repeats", 1, "--warmup", 0, "--layers-list", "0,2"]
    )
    run_cli(["bench", "--device", ctx.device.type, *small, "--out", out])
    expect((out / "bench_table7.md").exists(), f"{out / 'bench_table7.md'} was not written")
    return f"edlnet bench {' '.join(map(str, small))}: {out / 'bench_table7.md'}"


@check
def layer_bench(ctx: Context) -> str:
    out = ctx.out / "layer_bench"
    small = (
        [
            "--batch",
            16,
            "--repeats",
            2,
            "--warmup",
            1,
            "--width",
            16,
            "--net-repeats",
            1,
            "--bf16-batch",
            8,
            "--layer-sections",
            "layers,layers_bf16,networks,networks_bf16",
        ]
        if ctx.gpu
        else ["--batch", 1, "--repeats", 1, "--warmup", 0, "--width", 8, "--layer-sections", "layers"]
    )
    run_cli(["bench", "--layers", "--device", ctx.device.type, *small, "--out", out])
    expect((out / "layer_bench.md").exists(), f"{out / 'layer_bench.md'} was not written")
    return f"edlnet bench --layers {' '.join(map(str, small))}: {out / 'layer_bench.md'}"


def _train_args(ctx: Context, name: str, epochs: int) -> list:
    if ctx.gpu:
        sets = [
            "model=resnet18",
            "model_kwargs.width=16",
            "dl=vanilla",
            "switch_to_elastic_epoch=1",
            "train_subset=1024",
            "val_size=128",
            "test_subset=256",
            "batch_size=128",
            "objective=pgd_at",
            "attack_steps=2",
            "val_attack_steps=2",
        ]
    else:
        sets = [
            "model=resnet10",
            "model_kwargs.width=4",
            "dl=vanilla",
            "switch_to_elastic_epoch=1",
            "train_subset=96",
            "val_size=32",
            "test_subset=32",
            "batch_size=32",
            "val_attack_steps=0",
        ]
    sets += [f"epochs={epochs}", f"name={name}", f"out_dir={ctx.out / 'runs'}", f"device={ctx.device}"]
    return ["train", "--no-progress", *[a for s in sets for a in ("--set", s)]]


@check
def train_and_resume(ctx: Context) -> str:
    if ctx.gpu:  # cuDNN's fastest algorithms are not deterministic; resume exactness is the point
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    t = time.perf_counter()
    run_cli(_train_args(ctx, "full", 2))
    seconds = time.perf_counter() - t
    run_cli(_train_args(ctx, "part", 1))
    part = ctx.out / "runs" / "part"
    run_cli(["train", "--no-progress", "--resume", part, "--set", "epochs=2", "--allow-change", "epochs"])
    a = edlnet.load(ctx.out / "runs" / "full" / "checkpoints" / "last").state_dict()
    b = edlnet.load(part / "checkpoints" / "last").state_dict()
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    if ctx.gpu:
        expect(
            diff <= 1e-5, f"resumed weights differ from the uninterrupted run by {diff:.3g} (tolerance 1e-5)"
        )
    else:
        expect(
            diff == 0.0, f"resumed weights differ from the uninterrupted run by {diff:.3g} (expected bitwise)"
        )
    lines = (part / "metrics.jsonl").read_text().splitlines()
    expect(len(lines) == 2, f"{part / 'metrics.jsonl'} has {len(lines)} lines, expected 2")
    return f"2 epochs in {seconds:.1f} s; 1 epoch + --resume: max weight difference {diff:.2e}"


TINY_SUITE = """name: tiny
main: {norm: Linf, eps: 8/255}
batch_size: 4
entries:
  - {name: FGSM, attack: fgsm, eps: 8/255}
  - {name: PGD-3, attack: pgd, eps: 8/255, settings: {steps: 3}}
checks:
  large_eps: {steps: 3}
  gradients: {n_probe: 4}
"""


@check
def quick_eval(ctx: Context) -> str:
    run = ctx.out / "runs" / "full"
    if not (run / "checkpoints" / "last").exists():
        raise CheckFailed(f"no trained run at {run} (train_and_resume failed)")
    if ctx.gpu:
        suite, n = "quick", 64
    else:
        suite, n = ctx.out / "tiny_suite.yaml", 4
        suite.write_text(TINY_SUITE)
    out = ctx.out / "eval"
    run_cli(
        [
            "eval",
            run,
            "--checkpoint",
            "last",
            "--suite",
            suite,
            "--n-examples",
            n,
            "--device",
            ctx.device.type,
            "--out",
            out,
            "--quiet",
        ]
    )
    record = json.loads((out / "results.json").read_text())
    expect(record["n_examples"] == n, f"evaluated {record['n_examples']} examples, expected {n}")
    return (
        f"suite {Path(str(suite)).stem}, {n} examples: clean {record['clean']:.3f}, "
        f"attacks {record['attacks']}, checks {record['checks_summary']['line']}"
    )


@check
def torchrun_nccl(ctx: Context) -> str:
    if not ctx.gpu:
        raise Skip("needs CUDA; tests/test_distributed.py runs 2 gloo processes on the CPU")
    if torch.cuda.device_count() < 2:
        raise Skip(f"{torch.cuda.device_count()} GPU: NCCL needs one GPU per rank (run on a machine with 2+)")
    out = ctx.out / "torchrun"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        str(ROOT / "tests" / "dist_worker.py"),
        str(out),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    expect(proc.returncode == 0, f"torchrun exited with {proc.returncode}: {proc.stderr[-1500:]}")
    same = (out / "ranks_identical.txt").read_text().split()
    expect(same == ["True", "2"], f"ranks ended with different parameters: {same}")
    return "2 NCCL ranks on cuda:0 and cuda:1, parameters bit-identical"


# -- driver ---------------------------------------------------------------------------------------
def gpu_visible() -> str | None:
    """The GPU nvidia-smi reports, if any (a GPU torch cannot use must not pass as 'no GPU')."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def run_checks(ctx: Context, only: list[str] | None = None) -> list[Result]:
    results = []
    for name, fn in CHECKS:
        if only and name not in only:
            continue
        t = time.perf_counter()
        print(f"[gpu_check] {name} ...", flush=True)
        try:
            detail, status = fn(ctx), "passed"
        except Skip as e:
            detail, status = str(e), "skipped"
        except Exception as e:
            detail, status = f"{type(e).__name__}: {e}", "failed"
            traceback.print_exc()
        results.append(Result(name, status, time.perf_counter() - t, detail))
        print(f"[gpu_check] {name}: {status.upper()} ({results[-1].seconds:.1f} s) {detail}", flush=True)
    return results


def write_record(ctx: Context, results: list[Result], seconds: float) -> dict:
    from edlnet.records import environment, timestamp

    env = environment()
    record = {
        "gpu": torch.cuda.get_device_name(ctx.device) if ctx.gpu else None,
        "device": str(ctx.device),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "mode": "gpu" if ctx.gpu else "cpu-only",
        "seconds": seconds,
        "budget_seconds": BUDGET_SECONDS,
        "passed": all(r.status != "failed" for r in results),
        "notes": ctx.notes,
        "checks": [asdict(r) for r in results],
        "environment": env,
        "finished": timestamp(),
    }
    (ctx.out / "gpu_check.json").write_text(json.dumps(record, indent=2, default=str))
    lines = [
        f"# edlnet GPU check: {'PASSED' if record['passed'] else 'FAILED'}",
        "",
        f"- GPU: {record['gpu'] or 'none (CPU-only part)'}; device {record['device']}",
        f"- torch {env['torch']}, CUDA {record['cuda']}, cuDNN {record['cudnn']}, commit {env['git_commit']}",
        f"- {seconds:.0f} s (budget {BUDGET_SECONDS} s), {record['finished']}",
        *[f"- {n}" for n in ctx.notes],
        "",
        "| check | status | seconds | detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.name} | {r.status} | {r.seconds:.1f} | {r.detail.replace('|', '/')} |" for r in results]
    (ctx.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="output folder (default runs/gpu_check-<time>)")
    p.add_argument("--cpu-only", action="store_true", help="run the CPU part even when CUDA is available")
    p.add_argument("--require-gpu", action="store_true", help="exit 2 when there is no usable CUDA device")
    p.add_argument("--only", nargs="+", metavar="CHECK", help="run these checks only")
    args = p.parse_args(argv)
    visible = gpu_visible()
    cuda = torch.cuda.is_available()
    if visible and not cuda and not args.cpu_only:
        print(
            f"[gpu_check] FAILED: nvidia-smi sees a GPU ({visible}) but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); install a CUDA build of torch, "
            "or pass --cpu-only",
            file=sys.stderr,
        )
        return 2
    if args.require_gpu and not cuda:
        print("[gpu_check] FAILED: --require-gpu and no usable CUDA device", file=sys.stderr)
        return 2
    gpu = cuda and not args.cpu_only
    out = Path(args.out) if args.out else ROOT / "runs" / f"gpu_check-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: pass a new --out")
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(device=torch.device("cuda", 0) if gpu else torch.device("cpu"), out=out, gpu=gpu)
    if not gpu:
        ctx.notes.append(
            "CPU-only part: "
            + ("--cpu-only given" if cuda else "no CUDA device")
            + "; the GPU-only checks are listed as skipped"
        )
    t = time.perf_counter()
    results = run_checks(ctx, args.only)
    seconds = time.perf_counter() - t
    if seconds > BUDGET_SECONDS:
        ctx.notes.append(f"took {seconds:.0f} s, over the {BUDGET_SECONDS} s budget")
    record = write_record(ctx, results, seconds)
    failed = [r for r in results if r.status == "failed"]
    print((out / "gpu_check.md").read_text())
    if failed:
        print("[gpu_check] FAILED: " + "; ".join(f"{r.name}: {r.detail}" for r in failed), file=sys.stderr)
        return 1
    if not gpu:
        print(
            "[gpu_check] NOTE: no GPU checks ran (CPU-only part); run this on a CUDA machine", file=sys.stderr
        )
    print(f"[gpu_check] {'all checks passed' if record['passed'] else 'FAILED'}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
