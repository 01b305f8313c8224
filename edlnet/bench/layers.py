"""``edlnet bench --layers``: time and memory of dictionary layers against the convolution floor.

A dictionary layer with T = ``n_steps`` updates does the work of 2T + 1 convolutions (z₀ = A(x),
then one A* and one A per step). Its *floor* is that many plain ``conv2d``/``conv_transpose2d``
calls of the same shapes, chained so that every call also needs its input gradient, forward and
backward. Sections (``--layer-sections``; all but ``compile`` by default; ``--no-compiled`` skips
the compiled variants):

* ``layers`` — forward+backward of one ``DictConv2d`` (train mode, so the norm refresh is
  included) for 16→16, 32→32 and 64→64 at 32×32 and 256→256 at 8×8, batch 128, fp32: the floor,
  the fast path (elastic default, vanilla, recompute, detached reweighting gradient), the
  compiled path (``impl="compiled"``, exact and detached), the reference autograd path, and the
  fast and compiled paths on channels_last tensors against a channels_last floor.
* ``layers_bf16`` — the floor, the fast and the compiled layer (exact and detached) under bf16
  autocast, with the fp32 floor of the same batch beside them.
* ``networks`` — one training step (forward, cross-entropy, backward) of EDLNet-18 (elastic,
  n_steps = 2, every convolution a dictionary layer) against ResNet-18 of the same width: time,
  peak memory and saved-activation memory, for the default fast path (``recompute="auto"``),
  ``recompute=False``/``True`` and the reference path.
* ``networks_bf16`` — the same step in fp32 and bf16 autocast, channels-first and channels_last.
* ``attack_step`` — one step of a gradient attack's inner loop (PGD, APGD): eval mode, the
  gradient of the cross-entropy with respect to the input only, ResNet-10 against EDLNet-10
  (elastic, exact reweighting gradients) at ``--attack-width`` (16: the width of the CPU
  experiments), fp32 and bf16 autocast: time per image, EDLNet ÷ ResNet, and each one's bf16 gain;
  EDLNet-10 both with the default fast path and with ``impl="compiled"`` (its first call, which
  compiles or loads Inductor's cache, is timed apart), and EDLNet-10's *convolution floor*
  (``edlnet10_floor``: every dictionary layer reduced to its 2T + 1 chained convolutions, i.e.
  what the network would cost if its layers cost only their convolutions; "× floor" is the
  ratio of each EDLNet-10 to it).
* ``train_step`` — the same networks, one step of single-step adversarial training (FGSM with
  random start: the attack's input gradient with frozen parameters, then the training step).
* ``compile`` (opt-in) — ``torch.compile`` of one layer (fast and reference paths, batch
  ``--compile-batch``) against eager: compile time, and time relative to the floor.

Timing: each case runs ``warmup`` times, then the cases run round-robin ``repeats`` times and the
median is reported, so load that drifts during the run hits all cases alike; the 1-minute load
average is recorded before and after each block (timings mean something when it is low). Ratios
are also given paired — the median of the per-round ratios with a distribution-free 95% interval
— and the report ends with the speed targets judged on them (:mod:`edlnet.bench.targets`:
holds, misses, or undetermined when the interval contains the bound).

Memory. *peak*: :func:`edlnet.bench.measure.peak_step_memory` — on the CPU, where PyTorch keeps
no allocator statistics, the peak of the running sum of the tensor allocations and frees that
``torch.profiler(profile_memory=True)`` records during one training step (tensors that existed
before the step — weights, the batch — are not counted; new gradients and every temporary are);
on CUDA ``max_memory_allocated``. *saved*: the bytes of the distinct storages autograd holds for
the backward pass at the end of the forward pass (``torch.autograd.graph.saved_tensors_hooks``;
parameters excluded).

On CPUs whose oneDNN lacks native bf16 (no AVX512-BF16/AMX, e.g. AVX2-only AMD Zen 3) PyTorch runs
bf16 convolutions through a slow fallback (many times slower than fp32); the bf16 sections then
use ``--bf16-batch`` and at most ``SLOW_BF16_REPEATS`` repeats to stay short.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..tables import markdown_grid
from . import targets
from .measure import autocast_for, paired_ratio, peak_step_memory, summary_text, time_round_robin

# (channels, spatial size): the first stage of the narrow CIFAR networks every CPU experiment
# trains (width 16, 32), and stages 1 and 3 of the paper's ResNet-18 (width 64)
SHAPES = ((16, 32), (32, 32), (64, 32), (256, 8))
SECTIONS = ("layers", "layers_bf16", "networks", "networks_bf16", "attack_step", "train_step", "compile")
DEFAULT_SECTIONS = SECTIONS[:6]  # "compile" is opt-in: compiling takes longer than measuring
SLOW_BF16_REPEATS = 3  # repeats cap where bf16 runs in PyTorch's slow fallback
DEFAULTS: dict[str, Any] = dict(
    batch=128,
    repeats=5,
    warmup=1,
    net_repeats=2,
    bf16_batch=16,
    compile_batch=32,
    n_steps=2,
    width=64,
    attack_width=16,
    compiled=True,  # time the compiled variants (impl="compiled"); they compile on first use
    device="cpu",
    out=None,
    threads=None,
)

LAYER_VARIANTS = {  # name: (DictConv2d options, description)
    "fast": (dict(), "fast path, elastic (default layer)"),
    "fast_vanilla": (dict(mode="vanilla"), "fast path, vanilla (β = 1)"),
    "fast_recompute": (dict(recompute=True), "fast path, elastic, recompute=True"),
    "fast_detached": (dict(w_grad="detached"), "fast path, elastic, detached reweighting gradient"),
    "compiled": (dict(impl="compiled"), "compiled path (impl='compiled', torch.compile), elastic"),
    "compiled_detached": (
        dict(impl="compiled", w_grad="detached"),
        "compiled path, elastic, detached reweighting gradient",
    ),
    "reference": (dict(impl="reference"), "reference autograd RISTA, elastic (before)"),
}
BF16_LAYER_VARIANTS = ("fast", "fast_detached", "compiled", "compiled_detached")
NET_VARIANTS = {  # name: (create_model options, description)
    "resnet18": (dict(), "ResNet-18 (plain convolutions)"),
    "edlnet18": (dict(dl="elastic"), "EDLNet-18, elastic, fast path (default: recompute='auto')"),
    "edlnet18_save_all": (dict(dl="elastic", recompute=False), "EDLNet-18, fast path, recompute=False"),
    "edlnet18_recompute": (dict(dl="elastic", recompute=True), "EDLNet-18, fast path, recompute=True"),
    "edlnet18_reference": (dict(dl="elastic", impl="reference"), "EDLNet-18, reference autograd (before)"),
}


# -- options -----------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``edlnet bench`` that only ``--layers`` uses (the others — ``--batch``,
    ``--repeats``, ``--warmup``, ``--width``, ``--n-steps``, ``--device``, ``--threads``,
    ``--out`` — are shared with the Table 7 benchmark)."""
    p.add_argument(
        "--layer-sections",
        default=",".join(DEFAULT_SECTIONS),
        help=f"--layers: comma-separated sections of {', '.join(SECTIONS)}",
    )
    p.add_argument(
        "--layer-networks",
        default=",".join(NET_VARIANTS),
        help="--layers: networks of the networks section (resnet18 is always timed)",
    )
    p.add_argument(
        "--layer-precisions",
        default=None,
        help="--layers: precisions of the network and step sections (default fp32,bf16); "
        "fp32 alone keeps the full batch on a CPU without native bf16",
    )
    p.add_argument(
        "--net-repeats",
        type=int,
        default=DEFAULTS["net_repeats"],
        help="--layers: timed training steps per network",
    )
    p.add_argument(
        "--bf16-batch",
        type=int,
        default=DEFAULTS["bf16_batch"],
        help="--layers: batch of bf16 sections where bf16 is not native on the CPU",
    )
    p.add_argument(
        "--attack-width",
        type=int,
        default=DEFAULTS["attack_width"],
        help="--layers: width of the ResNet-10/EDLNet-10 of the attack_step section",
    )
    p.add_argument(
        "--no-compiled",
        dest="compiled",
        action="store_false",
        default=None,
        help="--layers: skip the impl='compiled' variants (they compile on first use: minutes on a CPU)",
    )
    p.add_argument(
        "--compile-batch",
        type=int,
        default=DEFAULTS["compile_batch"],
        help="--layers: batch of the compile section",
    )


def _names(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return tuple(value)


def _options(args: Any) -> dict[str, Any]:
    """Resolved options from ``args`` (an argparse namespace of ``edlnet bench`` or any object):
    missing or None attributes take the defaults."""
    opt = {k: getattr(args, k, None) for k in DEFAULTS}
    opt = {k: (DEFAULTS[k] if v is None else v) for k, v in opt.items()}
    opt["sections"] = _names(
        getattr(args, "layer_sections", None) or getattr(args, "sections", None), DEFAULT_SECTIONS
    )
    opt["networks"] = _names(
        getattr(args, "layer_networks", None) or getattr(args, "networks", None), tuple(NET_VARIANTS)
    )
    # ``precision`` as a list (programmatic use) selects precisions; the single --precision of the
    # Table 7 command does not, since the layer table is defined in both fp32 and bf16.
    precision = getattr(args, "layer_precisions", None) or getattr(args, "precision", None)
    if isinstance(precision, str) and getattr(args, "layer_precisions", None) is None:
        precision = None
    opt["precision"] = _names(precision, ("fp32", "bf16"))
    for key, known in (
        ("sections", SECTIONS),
        ("networks", tuple(NET_VARIANTS)),
        ("precision", ("fp32", "bf16")),
    ):
        unknown = sorted(set(opt[key]) - set(known))
        if unknown:
            raise ValueError(f"unknown {key} {unknown}; known: {', '.join(known)}")
    for key in (
        "batch",
        "repeats",
        "warmup",
        "net_repeats",
        "bf16_batch",
        "compile_batch",
        "n_steps",
        "width",
        "attack_width",
    ):
        opt[key] = int(opt[key])
        if opt[key] < (0 if key in ("warmup", "n_steps") else 1):
            raise ValueError(f"--{key.replace('_', '-')} must be positive, got {opt[key]}")
    opt["compiled"] = bool(opt["compiled"])
    device = str(opt["device"])
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    opt["device"] = torch.device(device)
    return opt


def bf16_native(device: torch.device) -> bool:
    from ..layers.rista_fast import native_low_precision

    return native_low_precision(device.type, torch.bfloat16)


# -- measurement -------------------------------------------------------------------------------
def saved_bytes(fn: Callable[[], Any], exclude: set[int] = frozenset()) -> tuple[int, Any]:
    """Bytes of distinct storages autograd saves for backward while running ``fn``; returns
    (bytes, fn's result). Storages whose data pointer is in ``exclude`` (parameters) are skipped."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in exclude:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# -- layer sections ----------------------------------------------------------------------------
def _floor_case(x: torch.Tensor, w: torch.Tensor, g: torch.Tensor, n_steps: int, precision: str):
    """2T + 1 chained convolutions (A, then A*, A per step) forward and backward."""

    def step():
        with autocast_for(precision, x.device)():
            z = F.conv2d(x, w, None, 1, 1)
            for _ in range(n_steps):
                z = F.conv2d(F.conv_transpose2d(z, w, None, 1, 1), w, None, 1, 1)
        z.backward(g)
        x.grad = w.grad = None

    return step


def _layer_case(layer: torch.nn.Module, x: torch.Tensor, g: torch.Tensor, precision: str):
    def step():
        with autocast_for(precision, x.device)():
            y = layer(x)
        y.backward(g)
        x.grad = None
        layer.zero_grad(set_to_none=True)

    return step


def _describe(name: str) -> str:
    if name == "floor":
        return "2T+1 chained conv2d/conv_transpose2d, forward+backward"
    if name == "floor_fp32":
        return "the floor in fp32 (same batch)"
    return LAYER_VARIANTS[name][1]


def bench_layers(opt: dict[str, Any], precision: str) -> list[dict[str, Any]]:
    from ..layers.dict_conv import DictConv2d

    dev = opt["device"]
    slow = precision == "bf16" and not bf16_native(dev)
    batch = opt["bf16_batch"] if slow else opt["batch"]
    repeats = min(opt["repeats"], SLOW_BF16_REPEATS) if slow else opt["repeats"]
    rows = []
    for (channels, size), fmt in itertools.product(SHAPES, ("contiguous", "channels_last")):
        mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(batch, channels, size, size, generator=gen)
        g = torch.randn(batch, channels, size, size, generator=gen)
        w = torch.randn(channels, channels, 3, 3, generator=gen) / (3 * channels**0.5)
        x, g, w = (t.to(dev).contiguous(memory_format=mf) for t in (x, g, w))
        x.requires_grad_()
        w.requires_grad_()
        cases = {"floor": _floor_case(x, w, g, opt["n_steps"], precision)}
        variants = (
            LAYER_VARIANTS if fmt == "contiguous" else {k: LAYER_VARIANTS[k] for k in ("fast", "compiled")}
        )
        if precision == "bf16":
            # the default layer under autocast (where bf16 is slow it keeps fp32 convolutions),
            # against the bf16 floor and the fp32 floor of the same batch
            variants = {k: LAYER_VARIANTS[k] for k in BF16_LAYER_VARIANTS}
            cases["floor_fp32"] = _floor_case(x, w, g, opt["n_steps"], "fp32")
        if not opt["compiled"]:
            variants = {k: v for k, v in variants.items() if v[0].get("impl") != "compiled"}
        layers = {}
        for name, (kw, _) in variants.items():
            torch.manual_seed(0)
            layer = DictConv2d(channels, channels, 3, 1, 1, n_steps=opt["n_steps"], **kw)
            layers[name] = layer.to(dev, memory_format=mf)
            cases[name] = _layer_case(layers[name], x, g, precision)
        load0 = _load()
        timed = time_round_robin(cases, repeats, max(opt["warmup"], 1), dev)
        load1 = _load()
        floor = timed["floor"]["median_s"]
        for name, t in timed.items():
            row = dict(
                channels=channels,
                size=size,
                batch=batch,
                n_steps=opt["n_steps"],
                precision=precision,
                memory_format=fmt,
                variant=name,
                description=_describe(name),
                time_s=t["median_s"],
                min_s=t["min_s"],
                repeats=t["n"],
                ratio_to_floor=t["median_s"] / floor,
                ratio_to_floor_paired=paired_ratio(t["times_s"], timed["floor"]["times_s"]),
                times_s=t["times_s"],
                load_before=load0,
                load_after=load1,
            )
            if name in layers:
                with autocast_for(precision, dev)():
                    layer = layers[name]
                    nbytes, _ = saved_bytes(
                        lambda layer=layer, x=x: layer(x), {p.data_ptr() for p in layer.parameters()}
                    )
                row["saved_mb"] = nbytes / 2**20
            rows.append(row)
        del cases, layers
    return rows


# -- network sections --------------------------------------------------------------------------
def _net_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str):
    def step():
        with autocast_for(precision, x.device)():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def _build_net(name: str, opt: dict[str, Any], channels_last: bool = False) -> torch.nn.Module:
    import edlnet

    torch.manual_seed(0)
    kw = dict(NET_VARIANTS[name][0])
    if "dl" in kw:
        kw["n_steps"] = opt["n_steps"]
    model = edlnet.create_model("resnet18", width=opt["width"], **kw).to(opt["device"]).train()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _batch(n: int, device: torch.device, channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    x = x.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device)


def bench_networks(opt: dict[str, Any]) -> list[dict[str, Any]]:
    dev = opt["device"]
    x, y = _batch(opt["batch"], dev)
    rows, cases = [], {}
    for name in ["resnet18"] + [n for n in opt["networks"] if n != "resnet18"]:
        model = _build_net(name, opt)
        step = _net_step(model, x, y, "fp32")
        # the memory-profiled step doubles as the first warm-up (cold power iterations, oneDNN
        # primitives); it allocates the same tensors as every later step
        peak_mb, method = peak_step_memory(step, dev)
        params = {p.data_ptr() for p in model.parameters()}
        nbytes, loss = saved_bytes(lambda model=model: F.cross_entropy(model(x), y), params)
        del loss
        rows.append(
            dict(
                network=name,
                description=NET_VARIANTS[name][1],
                width=opt["width"],
                batch=opt["batch"],
                precision="fp32",
                memory_format="contiguous",
                saved_mb=nbytes / 2**20,
                peak_mb=peak_mb,
                peak_method=method,
            )
        )
        cases[name] = step
    load0 = _load()
    timed = time_round_robin(cases, opt["net_repeats"], max(opt["warmup"] - 1, 0), dev)
    load1 = _load()
    base = rows[0]
    for r in rows:
        t = timed[r["network"]]
        r.update(
            time_s=t["median_s"],
            min_s=t["min_s"],
            repeats=t["n"],
            time_vs_resnet18=t["median_s"] / timed["resnet18"]["median_s"],
            saved_vs_resnet18=r["saved_mb"] / base["saved_mb"],
            peak_vs_resnet18=(r["peak_mb"] / base["peak_mb"]) if r["peak_mb"] and base["peak_mb"] else None,
            load_before=load0,
            load_after=load1,
        )
    return rows


def bench_networks_bf16(opt: dict[str, Any]) -> list[dict[str, Any]]:
    dev = opt["device"]
    slow = not bf16_native(dev)
    batch = opt["bf16_batch"] if slow else opt["batch"]
    repeats = min(opt["net_repeats"], SLOW_BF16_REPEATS) if slow else opt["net_repeats"]
    cases, meta = {}, {}
    for name in ("resnet18", "edlnet18"):
        for channels_last in (False, True):
            model = _build_net(name, opt, channels_last)
            x, y = _batch(batch, dev, channels_last)
            fmt = "channels_last" if channels_last else "contiguous"
            for precision in ("fp32", "bf16"):
                key = f"{name}/{precision}/{fmt}"
                cases[key] = _net_step(model, x, y, precision)
                meta[key] = dict(
                    network=name,
                    description=NET_VARIANTS[name][1],
                    width=opt["width"],
                    batch=batch,
                    precision=precision,
                    memory_format=fmt,
                )
    load0 = _load()
    timed = time_round_robin(cases, repeats, max(opt["warmup"], 1), dev)
    load1 = _load()
    rows = []
    for key, m in meta.items():
        t = timed[key]
        ref = timed[f"{m['network']}/fp32/contiguous"]["median_s"]
        rows.append(
            dict(
                **m,
                time_s=t["median_s"],
                min_s=t["min_s"],
                repeats=t["n"],
                speedup_vs_fp32=ref / t["median_s"],
                load_before=load0,
                load_after=load1,
            )
        )
    return rows


# -- attack-step section -----------------------------------------------------------------------
FLOOR_NET = "edlnet10_floor"  # EDLNet-10's convolution floor, a row of the step sections
ATTACK_NETS = {  # name: (create_model options, description)
    "resnet10": (dict(), "ResNet-10 (plain convolutions)"),
    "edlnet10": (dict(dl="elastic"), "EDLNet-10, elastic, exact reweighting gradients"),
    "edlnet10_compiled": (
        dict(dl="elastic", impl="compiled"),
        "EDLNet-10, elastic, exact reweighting gradients, impl='compiled'",
    ),
    FLOOR_NET: (
        dict(dl="elastic"),
        "EDLNet-10 with every dictionary layer reduced to its 2T+1 chained convolutions (its floor)",
    ),
}


class ConvolutionChain(torch.nn.Module):
    """A dictionary layer reduced to its floor: the 2T + 1 convolutions of its shapes (A, then
    A* and A per step, on the layer's own weight) chained with nothing between them."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.weight, self.n_steps = layer.weight, layer.n_steps
        self.geometry = dict(
            stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..layers.conv_ops import dict_adjoint, dict_apply

        z = dict_apply(x, self.weight, **self.geometry)
        for _ in range(self.n_steps):
            z = dict_apply(
                dict_adjoint(z, self.weight, x.shape[-2:], **self.geometry), self.weight, **self.geometry
            )
        return z


def convolution_floor(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every ``DictConv2d`` replaced by its :class:`ConvolutionChain`: the time
    an EDLNet would take if its layers cost only their convolutions."""
    from ..layers.dict_conv import DictConv2d

    for name, child in model.named_children():
        if isinstance(child, DictConv2d):
            setattr(model, name, ConvolutionChain(child))
        else:
            convolution_floor(child)
    return model


def _input_grad_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str):
    """What an attack does per iteration: forward in eval mode, the input gradient only (with
    the parameters frozen, as every attack and the training adversary run)."""
    from ..attacks.base import input_gradients_only

    def step():
        x_adv = x.detach().requires_grad_(True)
        with input_gradients_only(model), autocast_for(precision, x.device)():
            loss = F.cross_entropy(model(x_adv).float(), y, reduction="sum")
            torch.autograd.grad(loss, x_adv)

    return step


def _fgsm_train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str):
    """One step of single-step adversarial training (FGSM with random start, Wong et al. 2020:
    ε 8/255, step 10/255) in train mode: the attack's input gradient with the parameters frozen,
    then the training step on the adversarial batch (what ``objective: pgd_at, attack_steps: 1``
    runs per batch)."""
    from ..attacks.base import input_gradients_only

    eps, alpha = 8 / 255, 10 / 255
    gen = torch.Generator(device=x.device).manual_seed(0)

    def step():
        delta = (torch.rand(x.shape, generator=gen, device=x.device) * 2 - 1) * eps
        x_adv = (x + delta).requires_grad_(True)
        with input_gradients_only(model), autocast_for(precision, x.device)():
            loss = F.cross_entropy(model(x_adv).float(), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = (x + (delta + alpha * grad.sign()).clamp(-eps, eps)).clamp(0, 1).detach()
        with autocast_for(precision, x.device)():
            loss = F.cross_entropy(model(x_adv).float(), y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


STEP_KINDS = {  # section: (model mode, step factory)
    "attack_step": ("eval", _input_grad_step),
    "train_step": ("train", _fgsm_train_step),
}


def bench_steps(opt: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """ResNet-10 against EDLNet-10 (eager and compiled) at ``--attack-width``, fp32 and bf16:
    an attack step (``attack_step``) or a single-step adversarial training step (``train_step``)."""
    import edlnet

    mode, factory = STEP_KINDS[kind]
    dev = opt["device"]
    slow = not bf16_native(dev)
    precisions = [p for p in ("fp32", "bf16") if p in opt["precision"]]
    batch = opt["bf16_batch"] if slow and "bf16" in precisions else opt["batch"]
    x, y = _batch(batch, dev)
    cases, meta = {}, {}
    for name, (kw, description) in ATTACK_NETS.items():
        if kw.get("impl") == "compiled" and not opt["compiled"]:
            continue
        torch.manual_seed(0)
        if "dl" in kw:
            kw = {**kw, "n_steps": opt["n_steps"]}
        model = edlnet.create_model("resnet10", width=opt["attack_width"], **kw).to(dev)
        if name == FLOOR_NET:
            model = convolution_floor(model)
        model.train(mode == "train")
        for precision in precisions:
            key = f"{name}/{precision}"
            cases[key] = factory(model, x, y, precision)
            meta[key] = dict(
                network=name,
                description=description,
                width=opt["attack_width"],
                batch=batch,
                precision=precision,
            )
    # the first call of a compiled model compiles (or loads Inductor's cache): timed apart
    first_call = {}
    for key, step in cases.items():
        start = time.perf_counter()
        step()
        first_call[key] = time.perf_counter() - start
    load0 = _load()
    timed = time_round_robin(cases, opt["repeats"], max(opt["warmup"], 1), dev)
    load1 = _load()
    rows = []
    for key, m in meta.items():
        t = timed[key]["median_s"]
        resnet = timed[f"resnet10/{m['precision']}"]["median_s"]
        fp32 = timed.get(f"{m['network']}/fp32", {}).get("median_s")
        floor = timed.get(f"{FLOOR_NET}/{m['precision']}", {}).get("median_s")
        dictionary_net = m["network"] not in ("resnet10", FLOOR_NET)
        paired = lambda base, key=key: (
            paired_ratio(timed[key]["times_s"], timed[base]["times_s"]) if base in timed else None
        )
        rows.append(
            dict(
                **m,
                time_s=t,
                min_s=timed[key]["min_s"],
                repeats=timed[key]["n"],
                first_call_s=first_call[key],
                images_per_s=batch / t,
                time_vs_resnet10=t / resnet,
                time_vs_floor=t / floor if floor and dictionary_net else None,
                time_vs_resnet10_paired=paired(f"resnet10/{m['precision']}"),
                time_vs_floor_paired=paired(f"{FLOOR_NET}/{m['precision']}") if dictionary_net else None,
                times_s=timed[key]["times_s"],
                bf16_gain=(fp32 / t) if fp32 and m["precision"] == "bf16" else None,
                load_before=load0,
                load_after=load1,
            )
        )
    gains = {r["network"]: r["bf16_gain"] for r in rows if r["bf16_gain"]}
    for r in rows:  # the measure: EDLNet's bf16 gain as a fraction of the ResNet's
        if r["bf16_gain"] and gains.get("resnet10"):
            r["bf16_gain_vs_resnet10"] = r["bf16_gain"] / gains["resnet10"]
    return rows


STEP_TITLES = {
    "attack_step": "One attack step (eval mode, input gradient only)",
    "train_step": "One single-step adversarial training step (FGSM with random start, train mode)",
}


# -- torch.compile section ---------------------------------------------------------------------
def bench_compile(opt: dict[str, Any]) -> list[dict[str, Any]]:
    """Eager against ``torch.compile`` for one 64→64 layer at 32×32 (fp32)."""
    import logging
    import warnings

    from ..layers.dict_conv import DictConv2d

    dev = opt["device"]
    channels, size, batch = 64, 32, opt["compile_batch"]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, channels, size, size, generator=gen).to(dev).requires_grad_()
    g = torch.randn(batch, channels, size, size, generator=gen).to(dev)
    w = (torch.randn(channels, channels, 3, 3, generator=gen) / (3 * channels**0.5)).to(dev)
    w.requires_grad_()
    cases = {"floor": _floor_case(x, w, g, opt["n_steps"], "fp32")}
    info: dict[str, dict[str, Any]] = {"floor": {}}
    for impl, compiled in itertools.product(("fast", "reference"), (False, True)):
        torch.manual_seed(0)
        layer = DictConv2d(channels, channels, 3, 1, 1, n_steps=opt["n_steps"], impl=impl).to(dev)
        name = f"{impl}{'_compiled' if compiled else ''}"
        info[name] = {}
        module: torch.nn.Module = layer
        if compiled:
            torch._logging.set_logs(dynamo=logging.ERROR)  # graph-break chatter is expected
            module = torch.compile(layer)
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _layer_case(module, x, g, "fp32")()
            except Exception as e:
                info[name] = {"status": f"failed: {type(e).__name__}: {str(e)[:200]}"}
                continue
            info[name] = {"status": "ok", "compile_s": time.perf_counter() - t0}
        cases[name] = _layer_case(module, x, g, "fp32")
    timed = time_round_robin(cases, opt["repeats"], max(opt["warmup"], 1), dev)
    floor = timed["floor"]["median_s"]
    rows = []
    for name, meta in info.items():
        row = dict(variant=name, channels=channels, size=size, batch=batch, **meta)
        if name in timed:
            row.update(time_s=timed[name]["median_s"], ratio_to_floor=timed[name]["median_s"] / floor)
        rows.append(row)
    return rows


# -- report ------------------------------------------------------------------------------------
def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _grid(title: str, columns: list[str], rows: list[list[str]], intro: str | None = None) -> list[str]:
    """One section of the Markdown report: heading, optional explanation, table."""
    return [f"## {title}", "", *([intro, ""] if intro else []), markdown_grid(columns, rows), ""]


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        "# Dictionary layers against the convolution floor",
        "",
        f"torch {env.get('torch')}, device {result['options']['device']}, {env.get('threads')} "
        f"threads, CPU capability {result['cpu_capability']}, native bf16 convolutions: "
        f"{result['bf16_native']}, THP_MEM_ALLOC_ENABLE={result['THP_MEM_ALLOC_ENABLE']}, "
        f"commit {env.get('git_commit')}.",
        "",
    ]
    load = lambda r: f"{r['load_before']}→{r['load_after']}"
    if result.get("layers"):
        lines += _grid(
            "One layer, forward+backward",
            [
                "shape",
                "batch",
                "precision",
                "format",
                "variant",
                "time (s)",
                "× floor",
                "paired × floor [95%]",
                "saved (MB)",
                "load",
            ],
            [
                [
                    f"{r['channels']}→{r['channels']} @ {r['size']}×{r['size']}",
                    str(r["batch"]),
                    r["precision"],
                    r["memory_format"],
                    r["variant"],
                    _fmt(r["time_s"]),
                    _fmt(r["ratio_to_floor"], 2),
                    summary_text(r.get("ratio_to_floor_paired")) if r["variant"] != "floor" else "–",
                    _fmt(r.get("saved_mb"), 1),
                    load(r),
                ]
                for r in result["layers"]
            ],
            "Median seconds; × floor is the ratio of the medians to the floor of the same shape, "
            "precision, memory format and batch (for a floor_fp32 row: fp32 time / bf16 time); "
            "paired × floor is the median of the per-round ratios (layer and floor timed in the same "
            "round-robin round, so drifting load cancels) with a distribution-free 95% interval of "
            "that median; load = 1-minute load average before→after the block.",
        )
    if result.get("networks"):
        lines += _grid(
            "One training step (fp32)",
            [
                "network",
                "width",
                "batch",
                "time (s)",
                "× ResNet-18",
                "peak (MB)",
                "× ResNet-18",
                "saved (MB)",
                "× ResNet-18",
                "load",
            ],
            [
                [
                    r["network"],
                    str(r["width"]),
                    str(r["batch"]),
                    _fmt(r["time_s"], 2),
                    _fmt(r["time_vs_resnet18"], 2),
                    _fmt(r["peak_mb"], 0),
                    _fmt(r["peak_vs_resnet18"], 2),
                    _fmt(r["saved_mb"], 0),
                    _fmt(r["saved_vs_resnet18"], 2),
                    load(r),
                ]
                for r in result["networks"]
            ],
        )
    if result.get("networks_bf16"):
        lines += _grid(
            "bf16 autocast against fp32, one training step",
            ["network", "width", "batch", "precision", "format", "time (s)", "speed-up vs fp32 contiguous"],
            [
                [
                    r["network"],
                    str(r["width"]),
                    str(r["batch"]),
                    r["precision"],
                    r["memory_format"],
                    _fmt(r["time_s"], 2),
                    _fmt(r["speedup_vs_fp32"], 2),
                ]
                for r in result["networks_bf16"]
            ],
        )
    for kind, title in STEP_TITLES.items():
        if result.get(kind):
            lines += _grid(
                title,
                [
                    "network",
                    "width",
                    "batch",
                    "precision",
                    "images/s",
                    "× ResNet-10",
                    "paired [95%]",
                    "× floor",
                    "paired [95%]",
                    "bf16 gain",
                    "gain ÷ ResNet's",
                    "first call (s)",
                ],
                [
                    [
                        r["network"],
                        str(r["width"]),
                        str(r["batch"]),
                        r["precision"],
                        _fmt(r["images_per_s"], 0),
                        _fmt(r["time_vs_resnet10"], 2),
                        summary_text(r.get("time_vs_resnet10_paired")) if r["network"] != "resnet10" else "–",
                        _fmt(r.get("time_vs_floor"), 2),
                        summary_text(r.get("time_vs_floor_paired")),
                        _fmt(r.get("bf16_gain"), 2),
                        _fmt(r.get("bf16_gain_vs_resnet10"), 2),
                        _fmt(r.get("first_call_s"), 1),
                    ]
                    for r in result[kind]
                ],
                "× ResNet-10 and × floor are ratios of medians; each paired column is the median of "
                "the per-round ratios (both networks timed in the same round-robin round) with a "
                "distribution-free 95% interval of that median.",
            )
    if result.get("compile"):
        lines += _grid(
            "torch.compile, one 64→64 layer at 32×32 (fp32)",
            ["variant", "batch", "time (s)", "× floor", "compile (s)", "status"],
            [
                [
                    r["variant"],
                    str(r["batch"]),
                    _fmt(r.get("time_s")),
                    _fmt(r.get("ratio_to_floor"), 2),
                    _fmt(r.get("compile_s"), 0),
                    r.get("status", ""),
                ]
                for r in result["compile"]
            ],
        )
    if result.get("targets"):
        lines += _grid(
            "Targets",
            ["target", "case", "median", "95% interval", "verdict"],
            targets.markdown_rows(result["targets"]),
            "Judged on the per-round ratios (edlnet.bench.targets): holds / misses when the whole "
            "95% interval of their median is on one side of the bound, undetermined when it "
            "contains the bound."
            + (
                ""
                if result.get("bf16_native", True)
                else " bf16 cases are not judged here: bf16 convolutions are not native on this device."
            ),
        )
    lines += ["Method: " + result["method"], ""]
    return "\n".join(lines)


def run_layer_bench(args: Any) -> dict[str, Any]:
    """Run the sections named in ``args`` and write ``config.yaml``, ``layer_bench.json`` and
    ``layer_bench.md`` to ``args.out`` (default: a new ``runs/bench-layers-<time>`` folder).
    Returns the result dictionary (with ``out``, the folder)."""
    from ..records import atomic_write, environment, new_run_dir, write_json, write_yaml

    opt = _options(args)
    if opt["threads"]:
        torch.set_num_threads(int(opt["threads"]))
    if opt["out"]:
        out = Path(opt["out"])
        out.mkdir(parents=True, exist_ok=True)
    else:
        out = new_run_dir("runs", f"bench-layers-{time.strftime('%Y%m%d-%H%M%S')}")
    config = {
        k: (str(v) if isinstance(v, torch.device) else list(v) if isinstance(v, tuple) else v)
        for k, v in opt.items()
    }
    config["out"] = str(out)
    write_yaml(out / "config.yaml", config)
    dev = opt["device"]
    result: dict[str, Any] = {
        "options": config,
        "environment": environment(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": bf16_native(dev),
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "method": (
            "medians of round-robin repeats after warm-up; floor = 2T+1 chained "
            "conv2d/conv_transpose2d calls of the layer's shapes, forward+backward; peak = "
            "edlnet.bench.measure.peak_step_memory over one training step (CPU: peak "
            "running sum of the tensor allocations torch.profiler records during the step); "
            "saved = distinct storages held for backward at the end of the forward pass "
            "(saved_tensors_hooks), parameters excluded."
        ),
    }
    t0 = time.time()

    def section(name: str, fn: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        # a line per section on stderr: the default run takes several minutes on a CPU
        start = time.time()
        print(f"bench --layers: {name} ...", file=sys.stderr, flush=True)
        rows = fn()
        print(f"bench --layers: {name} done in {time.time() - start:.0f} s", file=sys.stderr, flush=True)
        return rows

    layers = []
    for name, precision in (("layers", "fp32"), ("layers_bf16", "bf16")):
        if name in opt["sections"] and precision in opt["precision"]:
            layers += section(name, lambda precision=precision: bench_layers(opt, precision))
    if layers:
        result["layers"] = layers
    if "networks" in opt["sections"] and "fp32" in opt["precision"]:
        result["networks"] = section("networks", lambda: bench_networks(opt))
    if "networks_bf16" in opt["sections"] and "bf16" in opt["precision"]:
        result["networks_bf16"] = section("networks_bf16", lambda: bench_networks_bf16(opt))
    for kind in STEP_KINDS:
        if kind in opt["sections"]:
            result[kind] = section(kind, lambda kind=kind: bench_steps(opt, kind))
    if "compile" in opt["sections"]:
        result["compile"] = section("compile", lambda: bench_compile(opt))
    result["wall_s"] = time.time() - t0
    result["targets"] = targets.judge(result)
    write_json(out / "layer_bench.json", result)
    md = markdown(result)
    atomic_write(out / "layer_bench.md", lambda tmp: Path(tmp).write_text(md))
    result["out"] = str(out)
    return result


def run(args: argparse.Namespace) -> int:
    """Entry point of ``edlnet bench --layers``: prints the Markdown table; returns 0."""
    result = run_layer_bench(args)
    print(Path(result["out"], "layer_bench.md").read_text())
    print(f"wrote {result['out']}")
    return 0
