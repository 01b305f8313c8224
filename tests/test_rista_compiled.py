"""The compiled RISTA path (impl="compiled", torch.compile) against the reference, in float64,
and against the fast path under bf16 autocast. Each distinct layer compiles once (seconds)."""

import pytest
import torch

from edlnet.layers import DictConv2d
from edlnet.layers.rista import rista
from edlnet.layers.rista_compiled import rista_compiled, rista_iteration
from edlnet.layers.rista_fast import native_low_precision, rista_fast

D64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(options, dtype=D64, **geom):
    """A reference and a compiled layer with the same weights."""
    layers = {}
    for impl in ("reference", "compiled"):
        torch.manual_seed(0)
        layers[impl] = DictConv2d(4, 6, 3, n_steps=2, impl=impl, **geom, **options).to(dtype)
    return layers


def _run(layer, x, seed=1):
    xi = x.clone().requires_grad_()
    for _ in range(2):  # the second forward uses the warm-started norm
        y = layer(xi)
    g = torch.randn(y.shape, dtype=D64, generator=torch.Generator().manual_seed(seed)).to(y.dtype)
    (y * g).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}
    layer.zero_grad(set_to_none=True)
    return y.detach(), xi.grad, grads


@pytest.mark.parametrize(
    "mode,options,geom",
    [
        ("elastic", dict(), dict(padding=1)),
        ("elastic", dict(w_grad="detached", nonneg=True), dict(padding=1, stride=2)),
        ("vanilla", dict(step=0.3), dict(padding=1)),
    ],
)
def test_compiled_equals_reference_in_float64(mode, options, geom):
    layers = _pair(dict(mode=mode, **options), **geom)
    x = torch.rand(3, 4, 9, 8, dtype=D64)
    (y0, gx0, gp0), (y1, gx1, gp1) = (_run(layers[k], x) for k in ("reference", "compiled"))
    assert torch.allclose(y1, y0, rtol=1e-11, atol=1e-12)
    assert torch.allclose(gx1, gx0, rtol=1e-9, atol=1e-12)
    assert set(gp0) == set(gp1) and ("beta_logit" in gp0) == (mode == "elastic")
    for n in gp0:
        assert torch.allclose(gp1[n], gp0[n], rtol=1e-9, atol=1e-12), n
    # another batch size reuses the graph (the batch dimension is symbolic): no recompilation
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    y2, _, _ = _run(layers["compiled"], x[:2])
    assert torch.allclose(y2, _run(layers["reference"], x[:2])[0], rtol=1e-11, atol=1e-12)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs


GEOMETRIES = {
    "plain": dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1),
    "strided_grouped": dict(stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=2),
    "dilated": dict(stride=(1, 1), padding=(2, 2), dilation=(2, 2), groups=1),
}


@pytest.mark.parametrize(
    "beta,nonneg,w_grad,geometry",
    [
        (0.3, False, "exact", "plain"),
        ("tensor", True, "detached", "strided_grouped"),
        ("tensor", False, "exact", "dilated"),
        (1.0, False, "exact", "dilated"),  # vanilla: no reweighting
        (0.0, False, "exact", "plain"),  # robust DL
    ],
)
def test_hand_gradients_equal_autograd_of_the_reference_in_float64(beta, nonneg, w_grad, geometry):
    """The compiled path's autograd.Function, run eagerly (no compilation): its output and its
    hand-written gradients in x, the weight, β, λ, η and the norm equal autograd through the
    reference iteration on weight/norm, rescaled by the norm."""
    geom = GEOMETRIES[geometry]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, 9, 8, dtype=D64, generator=gen).requires_grad_()
    w = torch.randn(6, 4 // geom["groups"], 3, 3, dtype=D64, generator=gen).requires_grad_()
    b = torch.tensor(0.4, dtype=D64, requires_grad=True) if beta == "tensor" else beta
    lam, step, norm = (torch.tensor(v, dtype=D64, requires_grad=True) for v in (0.05, 0.7, 2.5))
    leaves = [x, w, lam, step, norm] + ([b] if beta == "tensor" else [])
    opts = dict(n_steps=2, eps=0.1, nonneg=nonneg, w_grad=w_grad, **geom)
    ref = rista(x, w / norm, beta=b, lam=lam, step=step, **opts) * norm
    out = rista_iteration(x, w, b, lam, step, norm, state_dtype=D64, conv_dtype=D64, out_dtype=D64, **opts)
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-13)
    gout = torch.randn(ref.shape, dtype=D64, generator=gen)
    expected = torch.autograd.grad((ref * gout).sum(), leaves)
    got = torch.autograd.grad((out * gout).sum(), leaves)
    for name, a, e in zip(("x", "weight", "lam", "step", "norm", "beta"), got, expected):
        assert torch.allclose(a, e, rtol=1e-10, atol=1e-12), name


@pytest.mark.parametrize("wanted", ["x", "weight", "scalars"])
def test_hand_gradients_of_a_subset_of_inputs(wanted):
    """Only the input's gradient (an attack step: frozen parameters, so no weight gradients are
    computed), only the dictionary's (an input that needs none), or only β, λ and η with a frozen
    dictionary (η's gradient then cannot be read off the weight gradient, which is not formed):
    still the reference's."""
    geom = GEOMETRIES["plain"]
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 4, 7, 7, dtype=D64, generator=gen).requires_grad_(wanted == "x")
    w = torch.randn(6, 4, 3, 3, dtype=D64, generator=gen).requires_grad_(wanted == "weight")
    norm = torch.tensor(2.0, dtype=D64, requires_grad=wanted == "weight")
    scalars = [torch.tensor(v, dtype=D64, requires_grad=wanted == "scalars") for v in (0.5, 0.05, 0.7)]
    leaves = {"x": [x], "weight": [w, norm], "scalars": scalars}[wanted]
    opts = dict(n_steps=2, eps=0.1, nonneg=False, w_grad="exact", **geom)
    beta, lam, step = scalars
    ref = rista(x, w / norm, beta=beta, lam=lam, step=step, **opts) * norm
    out = rista_iteration(x, w, beta, lam, step, norm, state_dtype=D64, conv_dtype=D64, out_dtype=D64, **opts)
    gout = torch.randn(ref.shape, dtype=D64, generator=gen)
    for a, e in zip(
        torch.autograd.grad((out * gout).sum(), leaves), torch.autograd.grad((ref * gout).sum(), leaves)
    ):
        assert torch.allclose(a, e, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not native_low_precision("cpu", torch.bfloat16), reason="bf16 is not native here")
def test_compiled_under_bf16_autocast_is_within_bf16_error():
    """The fast path's precision split (bf16 convolutions, fp32 state, bf16 output): within the
    bf16 tolerances of test_rista_fast against the float64 reference, like the fast path."""
    torch.manual_seed(0)
    layers = {impl: DictConv2d(8, 8, 3, padding=1, n_steps=2, impl=impl) for impl in ("fast", "compiled")}
    layers["compiled"].load_state_dict(layers["fast"].state_dict())
    reference = DictConv2d(8, 8, 3, padding=1, n_steps=2, impl="reference").double()
    reference.load_state_dict(layers["fast"].state_dict())
    x = torch.rand(4, 8, 8, 8)
    y0, gx0, gp0 = _run(reference, x.double())
    rel = lambda a, b: float((a.double() - b).norm() / b.norm())
    for impl, layer in layers.items():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y, gx, gp = _run(layer, x)
        assert y.dtype == torch.bfloat16  # what nn.Conv2d returns under this autocast
        assert rel(y, y0) < 2e-2 and rel(gx, gx0) < 0.1, impl
        for n in gp0:
            assert rel(gp[n], gp0[n]) < 0.1, (impl, n)


@pytest.mark.parametrize("conv_dtype,compiled", [(torch.bfloat16, True), (torch.float16, False)])
def test_compiled_low_precision_convolutions_are_within_their_error(conv_dtype, compiled):
    """Low-precision convolutions asked for explicitly (they run on every CPU, slowly where not
    native) with the fp32 state, compiled for bf16 and, to spare the suite a compilation, run
    eagerly (the function the compiled path traces) for fp16: within the bf16 tolerances of the
    autocast test against the float64 reference, and as close to the fast path's own split. Not the norm's gradient: it is
    the difference of two terms hundreds of times larger (⟨g, y⟩/n − ⟨g_w, w⟩/n²), which bf16
    convolutions can leave with the wrong sign in both paths (bf16 does on these inputs); it is checked in
    float64 above. (It reaches the weight through ∂‖A‖₂/∂weight, of order one, so its error is
    small against the weight's own gradient.)"""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 8, 8, 8, generator=gen)
    w = torch.randn(8, 8, 3, 3, generator=gen) / 8
    gout = torch.randn(4, 8, 8, 8, generator=gen)
    opts = dict(n_steps=2, lam=0.1, step=1.0, eps=0.1, padding=1)
    results = {}
    for run in ("reference", "fast", "compiled"):
        dtype = D64 if run == "reference" else torch.float32
        xi, wi = (t.to(dtype).requires_grad_() for t in (x, w))
        beta, norm = (torch.tensor(v, dtype=dtype, requires_grad=True) for v in (0.5, 1.7))
        if run == "reference":
            y = rista(xi, wi / norm, beta=beta, **opts) * norm
        else:
            if run == "fast":
                y = rista_fast(xi, wi, beta=beta, norm=norm, conv_dtype=conv_dtype, **opts)
            elif compiled:
                y = rista_compiled(xi, wi, beta=beta, norm=norm, conv_dtype=conv_dtype, **opts)
            else:
                fixed = dict(
                    stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, nonneg=False, w_grad="exact"
                )
                dtypes = dict(state_dtype=torch.float32, conv_dtype=conv_dtype, out_dtype=torch.float32)
                y = rista_iteration(xi, wi, beta, 0.1, 1.0, norm, n_steps=2, eps=0.1, **fixed, **dtypes)
            assert y.dtype == torch.float32  # no autocast: the state dtype comes back
        grads = torch.autograd.grad((y * gout.to(dtype)).sum(), [xi, wi, beta, norm])
        results[run] = dict(zip(("y", "x", "weight", "beta", "norm"), (y, *grads)))
    rel = lambda a, b: float((a.double() - b.double()).norm() / b.double().norm())
    for name in ("y", "x", "weight", "beta"):
        got = results["compiled"][name]
        assert rel(got, results["reference"][name]) < (2e-2 if name == "y" else 0.1), name
        assert rel(got, results["fast"][name]) < 0.1, (name, "fast")
    assert torch.isfinite(results["compiled"]["norm"])


def test_compiled_is_an_option_that_round_trips():
    layer = DictConv2d(2, 2, 3, impl="compiled")
    assert layer.config()["impl"] == "compiled" and "impl=compiled" in repr(layer)
    with pytest.raises(ValueError, match="impl must be one of"):
        DictConv2d(2, 2, 3, impl="jit")
