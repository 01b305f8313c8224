"""The fast RISTA (hand-written backward) against the reference autograd RISTA, in float64."""

import itertools
import zlib

import pytest
import torch
import torch.nn.functional as F

from edlnet.layers import DictConv2d
from edlnet.layers.rista import rista
from edlnet.layers.rista_fast import native_low_precision, resolve_dtypes, rista_fast

D64 = torch.float64
EPS = 0.05


pytestmark = pytest.mark.usefixtures("one_thread")


def _scalars(kind, beta_logit, lam_t):
    """β, λ, η for each kind of layer; tensors where the layer would have learnable ones."""
    if kind == "vanilla":
        return dict(beta=1.0, lam=0.05, step=0.2)
    if kind == "robust":
        return dict(beta=0.0, lam=0.05, step=0.05)
    b = torch.sigmoid(beta_logit)
    if kind == "elastic":
        return dict(beta=b, lam=0.05, step=0.1)
    if kind == "elastic_majorize":  # η depends on β, as DictConv2d's default step rule makes it
        return dict(beta=b, lam=0.05, step=0.3 / (b + (1 - b) / (2 * EPS)))
    return dict(beta=b, lam=lam_t, step=torch.tensor(0.15, dtype=D64, requires_grad=True))


def _run(fn, x, w, kw, norm, **extra):
    """norm·RISTA(x; w/norm), the way DictConv2d uses it: by autograd for the reference, folded
    into the function for the fast path."""
    if fn is rista:
        return rista(x, w / norm, **kw) * norm
    return rista_fast(x, w, **kw, norm=norm, **extra)


KINDS = ["vanilla", "robust", "elastic", "elastic_majorize", "tensor_lam_step"]


@pytest.mark.parametrize(
    "stride,size,nonneg,w_grad,kind,recompute",
    [
        (s, n, nn, wg, k, rc)
        for (s, n), nn, wg, k, rc in itertools.product(
            [(1, 7), (1, 8), (2, 7), (2, 8)], [False, True], ["exact", "detached"], KINDS, [False, True]
        )
    ],
)
def test_outputs_and_all_gradients_equal_reference(stride, size, nonneg, w_grad, kind, recompute):
    gen = torch.Generator().manual_seed(zlib.crc32(f"{stride}{size}{nonneg}{w_grad}{kind}".encode()))
    x = torch.randn(2, 3, size, size + 1, dtype=D64, generator=gen).requires_grad_()
    w = (torch.randn(4, 3, 3, 3, dtype=D64, generator=gen) * 0.3).requires_grad_()
    beta_logit = torch.tensor(-0.4, dtype=D64, requires_grad=True)
    lam_t = torch.tensor(0.04, dtype=D64, requires_grad=True)
    norm = torch.tensor(1.7, dtype=D64, requires_grad=True)
    leaves = [x, w, beta_logit, lam_t, norm]
    results = []
    for fn in (rista, rista_fast):
        sc = _scalars(kind, beta_logit, lam_t)
        leaves_now = (
            leaves + [sc["step"]] if isinstance(sc["step"], torch.Tensor) and sc["step"].is_leaf else leaves
        )
        extra = dict(recompute=recompute) if fn is rista_fast else {}
        z = _run(
            fn,
            x,
            w,
            dict(n_steps=3, eps=EPS, stride=stride, padding=1, nonneg=nonneg, w_grad=w_grad, **sc),
            norm,
            **extra,
        )
        gz = torch.randn(z.shape, dtype=D64, generator=torch.Generator().manual_seed(7))
        grads = torch.autograd.grad((z * gz).sum(), leaves_now, allow_unused=True)
        results.append((z, grads))
    (z_ref, g_ref), (z_fast, g_fast) = results
    assert torch.allclose(z_fast, z_ref, rtol=1e-12, atol=1e-12)
    assert len(g_ref) == len(g_fast)
    for a, b in zip(g_fast, g_ref):
        if b is None:  # e.g. β in vanilla/robust mode: no gradient from either
            assert a is None or not a.any()
            continue
        assert a is not None
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12 * (1 + float(b.abs().max())))
    # the gradients are not trivially zero
    assert all(g is None or g.any() for g in g_ref[:2])


@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("mode", ["vanilla", "robust", "elastic"])
@pytest.mark.parametrize(
    "options",
    [
        dict(),  # defaults: normalize, step="majorize"
        dict(normalize=False, step="auto", w_grad="detached"),
        dict(step=0.3, nonneg=True, bias=True),
        dict(groups=2, dilation=2, padding=2, stride=2),
    ],
)
def test_dictconv_fast_equals_reference(mode, options, recompute):
    options = dict(options)
    geom = {k: options.pop(k) for k in ("groups", "dilation", "padding", "stride", "bias") if k in options}
    geom = {"padding": 1, **geom}
    torch.manual_seed(0)
    layers = {}
    for impl in ("reference", "fast"):
        torch.manual_seed(0)
        layers[impl] = DictConv2d(
            4, 6, 3, mode=mode, n_steps=2, impl=impl, recompute=recompute, **geom, **options
        ).double()
    x = torch.rand(3, 4, 9, 8, dtype=D64)
    outs = {}
    for impl, layer in layers.items():
        xi = x.clone().requires_grad_()
        for _ in range(2):  # the second forward uses the warm-started norm
            y = layer(xi)
        g = torch.randn(y.shape, dtype=D64, generator=torch.Generator().manual_seed(1))
        (y * g).sum().backward()
        outs[impl] = (y.detach(), xi.grad, {n: p.grad for n, p in layer.named_parameters()})
    (y0, gx0, gp0), (y1, gx1, gp1) = outs["reference"], outs["fast"]
    assert torch.allclose(y1, y0, rtol=1e-11, atol=1e-12)
    assert torch.allclose(gx1, gx0, rtol=1e-9, atol=1e-12)
    assert set(gp0) == set(gp1)
    for n in gp0:
        if gp0[n] is None:
            assert gp1[n] is None
        else:
            assert torch.allclose(gp1[n], gp0[n], rtol=1e-9, atol=1e-12), n


def test_fast_is_the_default_and_options_round_trip():
    layer = DictConv2d(2, 3, 3, padding=1)
    assert layer.impl == "fast" and layer.recompute == "auto"
    cfg = layer.config()
    assert cfg["impl"] == "fast" and cfg["recompute"] == "auto"
    layer.configure(impl="reference", recompute=True)
    assert layer.config()["impl"] == "reference" and layer.recompute is True
    with pytest.raises(ValueError, match="impl"):
        layer.configure(impl="triton")
    with pytest.raises(ValueError, match="recompute"):
        layer.configure(recompute="sometimes")


def test_auto_recompute_picks_layers_with_cheap_convolutions():
    """The RGB stem (3·3² = 27 multiply-adds per code entry) and 1×1 shortcuts are re-run in the
    backward pass; 3×3 layers with 64+ input channels keep their iterates."""
    assert DictConv2d(3, 64, 3, padding=1).recomputes()
    assert DictConv2d(256, 512, 1, stride=2).recomputes()
    assert not DictConv2d(64, 64, 3, padding=1).recomputes()
    assert not DictConv2d(512, 1024, 1).recomputes()
    assert not DictConv2d(3, 64, 3, recompute=False).recomputes()
    assert DictConv2d(64, 64, 3, recompute=True).recomputes()


def test_double_backward_is_refused_on_fast_path_and_works_on_reference():
    x = torch.rand(1, 2, 6, 6, dtype=D64, requires_grad=True)
    for impl in ("fast", "reference"):
        layer = DictConv2d(2, 3, 3, padding=1, impl=impl).double()
        (gx,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
        if impl == "fast":
            with pytest.raises(RuntimeError):
                gx.sum().backward()
        else:
            gx.sum().backward()


def _saved_bytes(fn):
    """Bytes of distinct tensors autograd keeps for the backward pass of fn()."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def test_saved_memory_is_what_the_backward_needs():
    torch.manual_seed(0)
    x = torch.rand(4, 8, 16, 16, requires_grad=True)
    unit = x.numel() * 4  # one input-sized (= code-sized here) fp32 tensor
    sizes = {}
    for impl, recompute in (("reference", False), ("fast", False), ("fast", True)):
        torch.manual_seed(0)
        layer = DictConv2d(8, 8, 3, padding=1, n_steps=2, impl=impl, recompute=recompute)
        sizes[(impl, recompute)], _ = _saved_bytes(lambda layer=layer: layer(x))
    # fast: x, output, and per step z_t and r_t: 2 + 2·2 tensors (+ the small weight)
    assert sizes[("fast", False)] <= 6 * unit + 64 * 1024
    assert sizes[("reference", False)] > 2 * sizes[("fast", False)]
    # recompute: x and the weight only (the norm's power-iteration vector is batch-1)
    assert sizes[("fast", True)] <= unit + 64 * 1024


def test_recompute_gives_the_same_gradients_in_float32():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 10, 10)
    grads = []
    for recompute in (False, True):
        torch.manual_seed(0)
        layer = DictConv2d(4, 4, 3, padding=1, recompute=recompute)
        xi = x.clone().requires_grad_()
        layer(xi).sum().backward()
        grads.append((xi.grad, layer.weight.grad, layer.beta_logit.grad))
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_channels_last_input_matches_contiguous():
    torch.manual_seed(0)
    layer = DictConv2d(4, 6, 3, padding=1, stride=2)
    x = torch.rand(2, 4, 9, 9)
    res = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        layer.zero_grad()
        xi = x.detach().clone(memory_format=fmt).requires_grad_()
        y = layer(xi)
        y.sum().backward()
        res.append((y, xi.grad, layer.weight.grad.clone()))
    for a, b in zip(*res):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_low_precision_convolutions_keep_the_state_in_fp32():
    """bf16 convolutions with the codes, residuals and reweighting in fp32: close to the fp32
    result (the error is that of bf16 convolutions alone), and the output stays fp32."""
    torch.manual_seed(0)
    x = torch.rand(2, 4, 8, 8)
    w = torch.randn(4, 4, 3, 3) * 0.2
    kw = dict(n_steps=2, beta=0.5, lam=0.05, step=0.3, eps=0.1, padding=1)
    ref = rista(x.double(), w.double(), **kw)
    z32 = rista_fast(x, w, conv_dtype=None, **kw)
    zbf = rista_fast(x, w, conv_dtype=torch.bfloat16, **kw)
    assert zbf.dtype == torch.float32
    rel = lambda a: float((a.double() - ref).norm() / ref.norm())
    assert rel(z32) < 1e-6
    assert rel(zbf) < 2e-2


@pytest.mark.skipif(
    not native_low_precision("cpu", torch.bfloat16),
    reason="bf16 is not native here: PyTorch's fallback bf16 convolution is less accurate than "
    "oneDNN's (a β/η gradient beyond this tolerance on an AVX2 EPYC), and the layers never use it (conv_dtype="
    "'auto' keeps fp32 convolutions there)",
)
def test_low_precision_gradients_stay_within_bf16_error():
    """Gradients of x, the weight, β and η, for both reweighting policies (η a tensor, so the
    threshold's gradient runs too), with bf16 convolutions and the state in fp32: within bf16
    error of the float64 reference (measured: 0.4-6%, the x gradient worst, the same before and
    after the mixed-dtype fusions)."""
    torch.manual_seed(0)
    x = torch.rand(2, 4, 8, 8)
    w = torch.randn(4, 4, 3, 3) * 0.2
    kw = dict(n_steps=2, beta=0.5, lam=0.05, step=0.3, eps=0.1, padding=1)
    for w_grad in ("exact", "detached"):
        grads = {}
        for name, dt, conv in (("ref", torch.float64, None), ("bf16", torch.float32, torch.bfloat16)):
            xg, wg = x.to(dt).clone().requires_grad_(), w.to(dt).clone().requires_grad_()
            beta = torch.tensor(0.5, dtype=dt, requires_grad=True)
            step = torch.tensor(0.3, dtype=dt, requires_grad=True)
            args = dict(kw, beta=beta, step=step, w_grad=w_grad)
            if conv is None:
                out = rista(xg, wg, **args)
            else:
                out = rista_fast(xg, wg, conv_dtype=conv, **args)
            (out * torch.linspace(-1, 1, out.numel(), dtype=dt).view_as(out)).sum().backward()
            grads[name] = (xg.grad, wg.grad, beta.grad, step.grad)
        assert grads["bf16"][0].dtype == torch.float32
        for got, want in zip(grads["bf16"], grads["ref"]):
            assert torch.isfinite(got).all()
            assert float((got.double() - want).norm() / want.norm()) < 0.1, w_grad


def test_autocast_uses_low_precision_only_where_it_is_native():
    x, w = torch.rand(1, 2, 4, 4), torch.rand(2, 2, 3, 3)
    assert resolve_dtypes(x, w, "auto") == (torch.float32, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        state, conv = resolve_dtypes(x, w, "auto")
        expect = torch.bfloat16 if native_low_precision("cpu", torch.bfloat16) else torch.float32
        assert (state, conv) == (torch.float32, expect)
        layer = DictConv2d(2, 3, 3, padding=1)
        y = layer(x.bfloat16())
        # where bf16 is native the result is bf16, as nn.Conv2d's under this autocast (the
        # state stays fp32); elsewhere the layer keeps fp32 throughout
        assert y.dtype == expect and torch.isfinite(y).all()
        assert DictConv2d(2, 3, 3, padding=1, impl="reference")(x).dtype == torch.bfloat16
    assert DictConv2d(2, 3, 3, padding=1)(x.bfloat16()).dtype == torch.float32  # no autocast
    assert resolve_dtypes(x.double(), w.double(), "auto") == (D64, D64)


def test_zero_steps_is_convolution():
    x, w = torch.randn(2, 3, 7, 7), torch.randn(4, 3, 3, 3)
    assert torch.equal(rista_fast(x, w, n_steps=0, stride=2, padding=1), F.conv2d(x, w, None, 2, 1))


def test_layer_bench_writes_the_table(tmp_path):
    """``edlnet bench --layers`` end to end on tiny settings (width 8: PyTorch 2.13 aborts in the
    backward of a channels_last 1×1 stride-2 convolution with 4 input channels on this CPU)."""
    import json
    import types

    from edlnet.bench import layers as layer_bench

    args = types.SimpleNamespace(
        batch=1,
        repeats=1,
        warmup=0,
        width=8,
        net_repeats=1,
        bf16_batch=1,
        layer_sections="layers,networks,networks_bf16,attack_step,train_step",
        attack_width=8,
        compiled=False,  # compiling takes minutes here; tests/test_rista_compiled.py covers it
        layer_networks="edlnet18,edlnet18_reference",
        threads=1,
        precision="fp32",
        out=str(tmp_path),
    )
    assert layer_bench.run(args) == 0
    result = json.loads((tmp_path / "layer_bench.json").read_text())
    assert (tmp_path / "layer_bench.md").read_text().startswith("# Dictionary layers")
    assert (tmp_path / "config.yaml").exists()
    layers = result["layers"]
    assert {(r["channels"], r["memory_format"]) for r in layers} == {
        (c, f) for c in (16, 32, 64, 256) for f in ("contiguous", "channels_last")
    }
    by = {(r["channels"], r["memory_format"], r["variant"]): r for r in layers}
    assert all(r["time_s"] > 0 for r in layers)
    assert by[(64, "contiguous", "floor")]["ratio_to_floor"] == 1.0
    assert by[(64, "contiguous", "floor")]["ratio_to_floor_paired"]["median"] == 1.0
    assert all(len(r["times_s"]) == r["repeats"] for r in layers)
    # saved memory: recompute keeps only the input; the fast path a fraction of the reference
    fast, ref = by[(64, "contiguous", "fast")]["saved_mb"], by[(64, "contiguous", "reference")]["saved_mb"]
    assert by[(64, "contiguous", "fast_recompute")]["saved_mb"] < fast < ref / 2
    nets = {r["network"]: r for r in result["networks"]}
    assert list(nets) == ["resnet18", "edlnet18", "edlnet18_reference"]
    assert nets["resnet18"]["peak_vs_resnet18"] == 1.0
    assert nets["edlnet18"]["peak_mb"] < nets["edlnet18_reference"]["peak_mb"]
    assert len(result["networks_bf16"]) == 8
    steps = {(r["network"], r["precision"]): r for r in result["attack_step"]}
    nets = ("resnet10", "edlnet10", "edlnet10_floor")
    assert set(steps) == {(n, p) for n in nets for p in ("fp32", "bf16")}
    assert (
        steps[("resnet10", "fp32")]["time_vs_resnet10"] == 1.0 and steps[("edlnet10", "fp32")]["width"] == 8
    )
    assert (
        steps[("edlnet10", "fp32")]["time_vs_floor"] > 0
        and steps[("resnet10", "fp32")]["time_vs_floor"] is None
    )
    assert steps[("edlnet10", "bf16")]["bf16_gain_vs_resnet10"] > 0
    assert steps[("resnet10", "fp32")]["time_vs_resnet10_paired"]["median"] == 1.0
    assert steps[("edlnet10", "fp32")]["time_vs_floor_paired"]["median"] > 0
    assert steps[("resnet10", "fp32")]["time_vs_floor_paired"] is None
    train = {(r["network"], r["precision"]): r for r in result["train_step"]}
    assert set(train) == set(steps) and all(r["first_call_s"] > 0 for r in train.values())
    md = (tmp_path / "layer_bench.md").read_text()
    assert "One attack step" in md and "One single-step adversarial training step" in md
    # one round cannot establish a target either way: every verdict stays undetermined
    assert result["targets"] and {t["status"] for t in result["targets"]} == {"undetermined"}
    assert "## Targets" in md


def test_convolution_floor_is_the_layers_convolutions_alone():
    """The floor network of the step sections: every dictionary layer becomes A, then A*, A per
    step on its own weight, with nothing in between (the same parameters, nothing else)."""
    import edlnet
    from edlnet.bench.layers import ConvolutionChain, convolution_floor
    from edlnet.layers.dict_conv import dict_layers

    torch.manual_seed(0)
    layer = DictConv2d(4, 6, 3, stride=2, padding=1, n_steps=2)
    x = torch.randn(2, 4, 9, 9)
    w = layer.weight
    z = F.conv2d(x, w, None, 2, 1)
    for _ in range(2):
        z = F.conv2d(F.conv_transpose2d(z, w, None, 2, 1, output_padding=0), w, None, 2, 1)
    assert torch.allclose(ConvolutionChain(layer)(x), z, atol=1e-6)
    model = edlnet.create_model("resnet10", width=4, dl="elastic")
    n_layers, params = len(dict_layers(model)), {id(p) for p in model.parameters()}
    floor = convolution_floor(model)
    chains = [m for m in floor.modules() if isinstance(m, ConvolutionChain)]
    assert not dict_layers(floor) and len(chains) == n_layers
    assert {id(p) for p in floor.parameters()} <= params
    assert floor(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_layer_bench_options_are_defensive():
    import types

    from edlnet.bench.layers import DEFAULT_SECTIONS, _options

    opt = _options(types.SimpleNamespace())
    assert opt["batch"] == 128 and opt["sections"] == DEFAULT_SECTIONS
    assert opt["precision"] == ("fp32", "bf16") and opt["device"] == torch.device("cpu")
    assert _options(types.SimpleNamespace(precision=["fp32"]))["precision"] == ("fp32",)
    # --layer-precisions selects; Table 7's single --precision does not
    assert _options(types.SimpleNamespace(layer_precisions="fp32"))["precision"] == ("fp32",)
    assert _options(types.SimpleNamespace(precision="bf16"))["precision"] == ("fp32", "bf16")
    with pytest.raises(ValueError, match="precision"):
        _options(types.SimpleNamespace(layer_precisions="fp32,fp8"))
    with pytest.raises(ValueError, match="sections"):
        _options(types.SimpleNamespace(layer_sections="layers,everything"))
    with pytest.raises(ValueError, match="batch"):
        _options(types.SimpleNamespace(batch=0))
