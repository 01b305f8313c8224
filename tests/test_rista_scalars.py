"""The fast path with tensor scalars (no host sync, no graph break): the same values as with
numbers; fp16 convolutions keep the saved codes, hence the backward threshold masks, in fp32;
``torch.compile(fullgraph=True)`` of an EDLNet-18 forward+backward works on the CPU."""

import copy

import pytest
import torch
import torch.nn.functional as F

import edlnet
from edlnet.layers import rista_fast as rista_fast_module
from edlnet.layers.rista import rista
from edlnet.layers.rista_fast import _Config, _forward, _Scalars, _threshold_, rista_fast

D64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def test_tensor_threshold_is_bitwise_softshrink():
    v = torch.randn(4, 8, 9, 9, generator=torch.Generator().manual_seed(0))
    for tau in (0.0, 0.1, 0.7):
        number = _threshold_(v.clone(), tau, False, [])
        tensor = _threshold_(v.clone(), torch.tensor(tau), False, [])
        assert torch.equal(number, tensor)
        assert torch.equal(
            _threshold_(v.clone(), tau, True, []), _threshold_(v.clone(), torch.tensor(tau), True, [])
        )


@pytest.mark.parametrize("beta", [0.0, 0.35, 1.0])
@pytest.mark.parametrize("w_grad", ["exact", "detached"])
@pytest.mark.parametrize("recompute", [False, True])
def test_tensor_scalars_equal_numbers_and_reference(beta, w_grad, recompute):
    """β, λ, η, norm as tensors (even β = 0, which the number path special-cases) give the
    values and gradients of the numbers, and of the autograd reference, in float64."""
    g = torch.Generator().manual_seed(int(beta * 100) + recompute)
    x = torch.randn(2, 3, 8, 9, dtype=D64, generator=g).requires_grad_()
    w = (torch.randn(4, 3, 3, 3, dtype=D64, generator=g) * 0.3).requires_grad_()
    kw = dict(n_steps=3, eps=0.05, stride=1, padding=1, w_grad=w_grad)
    gz = torch.randn(2, 4, 8, 9, dtype=D64, generator=g)
    results = []
    for as_tensor in (False, True):
        s = dict(beta=beta, lam=0.05, step=0.2, norm=1.7)
        if as_tensor:  # β only when the layer would learn it: β = 1 stays the vanilla constant
            s = {
                k: (v if (k == "beta" and v == 1.0) else torch.tensor(v, dtype=D64, requires_grad=True))
                for k, v in s.items()
            }
        z = rista_fast(x, w, **kw, **s, recompute=recompute)
        leaves = [x, w] + [v for v in s.values() if isinstance(v, torch.Tensor)]
        grads = torch.autograd.grad((z * gz).sum(), leaves)
        results.append((z, grads[:2], grads[2:]))
        if as_tensor:
            ref_s = dict(s)
            norm = ref_s.pop("norm")
            z_ref = rista(x, w / norm, **kw, **ref_s) * norm
            ref_grads = torch.autograd.grad((z_ref * gz).sum(), leaves)
            assert torch.allclose(z, z_ref, rtol=1e-12, atol=1e-12)
            for a, b in zip(grads, ref_grads):
                assert torch.allclose(a, b, rtol=1e-10, atol=1e-12 * (1 + float(b.abs().max())))
    (z0, g0, _), (z1, g1, _) = results
    assert torch.allclose(z0, z1, rtol=1e-12, atol=1e-13)
    for a, b in zip(g0, g1):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13)


def test_dictconv_forward_keeps_scalars_as_tensors(monkeypatch):
    """No float()/item() of a tensor in a DictConv2d training step (the warm power iteration
    included): on a GPU each would be a host synchronization."""
    layer = edlnet.DictConv2d(3, 4, 3, padding=1, mode="elastic").train()
    x = torch.rand(2, 3, 8, 8)
    layer(x).sum().backward()  # the cold start of the power iteration may read values

    def refuse(self, *args, **kwargs):
        raise AssertionError("a tensor was read back to the host in the forward/backward pass")

    # on the CPU the threshold reads τ (free there); the path every other device takes does not
    monkeypatch.setattr(rista_fast_module, "READ_CPU_SCALARS", False)
    for name in ("__float__", "item", "tolist", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    layer(x).sum().backward()


def _codes(cd, keep=True):
    """Saved codes of a layer whose codes are tiny (1e-8..1e-6: fp16's subnormal range)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 8, 8, generator=g) * 3e-7
    w = torch.randn(8, 3, 3, 3, generator=g) * 0.3
    cfg = _Config(
        n_steps=3,
        eps=1e-7,
        stride=(1, 1),
        padding=(1, 1),
        dilation=(1, 1),
        groups=1,
        nonneg=False,
        exact=True,
        vanilla=True,
        recompute=False,
        state_dtype=torch.float32,
        conv_dtype=cd,
        out_dtype=torch.float32,
    )
    sc = _Scalars(beta=1.0, lam=1e-8, step=0.2, norm=None)
    _, zs, _ = _forward(x, w.to(cd), cfg, sc, keep=keep)
    # the codes the iteration itself computed (in fp32) after t steps, t = 0..2
    states = [
        _forward(x, w.to(cd), _Config(**{**cfg.__dict__, "n_steps": t}), sc, keep=False)[0]
        if t
        else F.conv2d(x.to(cd), w.to(cd), None, 1, 1).float()
        for t in range(3)
    ]
    return zs, states


def test_fp16_convolutions_save_fp32_codes_so_threshold_masks_survive():
    zs, states = _codes(torch.float16)
    assert all(z.dtype == torch.float32 for z in zs)
    lost = sum(int(((s.half() != 0) != (s != 0)).sum()) for s in states)
    assert lost > 0  # the case is real: fp16 copies of these codes would lose support
    for z, s in zip(zs, states):
        assert torch.equal(z != 0, s != 0) and torch.equal(z.sign(), s.sign())


def test_bf16_convolutions_still_save_bf16_codes():
    zs, states = _codes(torch.bfloat16)
    assert all(z.dtype == torch.bfloat16 for z in zs)
    for z, s in zip(zs, states):  # fp32's exponent range: support and sign survive the cast
        assert torch.equal(z != 0, s != 0)


def test_compile_fullgraph_edlnet10_forward_backward():
    """Dynamo captures a whole EDLNet-10 training step in one graph (any host read of a value
    would be a graph break, an error under fullgraph=True); EDLNet-10 has every layer kind of the
    deeper ResNets, which only repeat them. Backend aot_eager: it traces forward and backward
    through AOTAutograd like inductor does, without inductor's C++ code generation, which takes
    minutes at one thread (gpu_check.py compiles with inductor on the GPU). One eager step first:
    the power iteration's cold start stops on a value it reads."""
    torch.manual_seed(0)
    torch._dynamo.reset()
    model = edlnet.create_model("resnet10", dl="elastic", width=4).train()
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    model(x)
    eager = copy.deepcopy(model)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    loss = F.cross_entropy(compiled(x), y)
    loss.backward()
    ref = F.cross_entropy(eager(x), y)
    ref.backward()
    assert torch.equal(loss, ref)
    for p, q in zip(model.parameters(), eager.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-7)
    betas = [p for n, p in model.named_parameters() if n.endswith("beta_logit")]
    assert betas and all(p.grad is not None and p.grad.abs().sum() > 0 for p in betas)
    torch._dynamo.reset()
