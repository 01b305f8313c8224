"""The compiled RISTA path (impl="compiled", torch.compile) against the reference, in float64,
and against the fast path under bf16 autocast. Each distinct layer compiles once (seconds)."""

import pytest
import torch

from edlnet.layers import DictConv2d
from edlnet.layers.rista_fast import native_low_precision

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


def test_compiled_is_an_option_that_round_trips():
    layer = DictConv2d(2, 2, 3, impl="compiled")
    assert layer.config()["impl"] == "compiled" and "impl=compiled" in repr(layer)
    with pytest.raises(ValueError, match="impl must be one of"):
        DictConv2d(2, 2, 3, impl="jit")
