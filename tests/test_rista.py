"""The math of the dictionary layer: adjoints, special cases, descent, influence functions."""

import pytest
import torch
import torch.nn.functional as F
from helpers import dense_operator

from edlnet.layers import DictConv2d, dict_adjoint, dict_apply, rista, soft_threshold
from edlnet.layers.rista import reweighting

D64 = torch.float64


@pytest.mark.parametrize(
    "stride,size,k,pad,dil,groups",
    [
        (1, 7, 3, 1, 1, 1),
        (1, 8, 3, 0, 1, 1),
        (2, 7, 3, 1, 1, 1),
        (2, 8, 3, 1, 1, 1),
        (2, 9, 1, 0, 1, 1),
        (2, 10, 1, 0, 1, 1),
        (3, 11, 3, 1, 1, 1),
        (1, 9, 3, 2, 2, 1),
        (2, 8, 3, 1, 1, 2),
    ],
)
def test_adjoint_exact(stride, size, k, pad, dil, groups):
    w = torch.randn(4, 4 // groups, k, k, dtype=D64)
    x = torch.randn(2, 4, size, size + 1, dtype=D64)
    geom = dict(stride=(stride, stride), padding=(pad, pad), dilation=(dil, dil), groups=groups)
    ax = dict_apply(x, w, **geom)
    z = torch.randn_like(ax)
    aty = dict_adjoint(z, w, x.shape[-2:], **geom)
    assert aty.shape == x.shape
    lhs, rhs = (ax * z).sum(), (x * aty).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_zero_steps_is_convolution():
    x, w = torch.randn(3, 5, 9, 9), torch.randn(6, 5, 3, 3)
    for beta in (1.0, 0.0, torch.tensor(0.3)):
        z = rista(x, w, n_steps=0, beta=beta, stride=2, padding=1)
        assert torch.equal(z, F.conv2d(x, w, None, 2, 1))


def test_dictconv_with_conv_weights_zero_steps_equals_conv():
    conv = torch.nn.Conv2d(5, 7, 3, 2, 1, bias=True)
    layer = DictConv2d(5, 7, 3, 2, 1, bias=True, n_steps=0, mode="elastic")
    layer.load_state_dict(
        {**conv.state_dict(), "beta_logit": layer.beta_logit.detach(), "dict_norm": layer.dict_norm}
    )
    x = torch.randn(4, 5, 11, 10)
    for train in (True, False):
        layer.train(train)
        assert torch.equal(layer(x), conv(x))


def ista_reference(x, w, n_steps, lam, eta, stride, padding):
    """Plain ISTA on min ½‖x − Dz‖² + λ‖z‖₁ with the dense matrix D of the synthesis operator."""
    shape = x.shape[1:]
    A = dense_operator(lambda v: F.conv2d(v, w, None, stride, padding), shape)  # analysis, A = D^T
    xv = x.reshape(x.shape[0], -1).T
    z = A @ xv
    for _ in range(n_steps):
        z = soft_threshold(z + eta * A @ (xv - A.T @ z), lam * eta)
    return z.T


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (2, 0)])
def test_vanilla_equals_plain_ista(stride, padding):
    x, w = torch.randn(2, 3, 7, 6, dtype=D64), torch.randn(4, 3, 3, 3, dtype=D64) * 0.3
    z = rista(x, w, n_steps=5, beta=1.0, lam=0.05, step=0.1, stride=stride, padding=padding)
    ref = ista_reference(x, w, 5, 0.05, 0.1, stride, padding)
    assert torch.allclose(z.reshape(2, -1), ref, atol=1e-12)


def lipschitz(w, shape, stride=1, padding=1):
    A = dense_operator(lambda v: F.conv2d(v, w, None, stride, padding), shape)
    return torch.linalg.matrix_norm(A, ord=2) ** 2


def test_vanilla_objective_never_increases():
    x, w = torch.randn(3, 3, 8, 8, dtype=D64), torch.randn(6, 3, 3, 3, dtype=D64)
    L = lipschitz(w, x.shape[1:])
    for frac in (1.0, 0.5):
        _, terms = rista(x, w, n_steps=30, beta=1.0, lam=0.2, step=frac / L, padding=1, return_terms=True)
        diffs = terms.total[1:] - terms.total[:-1]
        assert (diffs <= 1e-10 * terms.total[:-1]).all()
        assert terms.total[-1].sum() < 0.9 * terms.total[0].sum()  # and it does descend


def smoothed_l1(r, eps):
    """ρ_ε(r) = |r| − ε·log(1 + |r|/ε): the objective RISTA with ε majorize-minimizes."""
    return (r.abs() - eps * torch.log1p(r.abs() / eps)).flatten(1).sum(1)


@pytest.mark.parametrize("beta", [0.0, 0.4])
def test_rista_small_step_descends(beta):
    """Lemma 4.1: with η ≤ 1/(L·max(β + (1−β)w)) each step minimizes a majorizer, so the
    (ε-smoothed) Eq. 12 objective never increases; the true ℓ1 objective descends up to O(ε)."""
    torch.manual_seed(1)
    x, w = torch.randn(2, 3, 8, 8, dtype=D64), torch.randn(5, 3, 3, 3, dtype=D64) * 0.5
    eps, lam = 1e-3, 0.05
    L = lipschitz(w, x.shape[1:])
    eta = 1.0 / (L * (beta + (1 - beta) / (2 * eps)))
    objs, l1_objs = [], []
    for t in range(0, 40, 4):
        z = rista(x, w, n_steps=t, beta=beta, lam=lam, step=eta, eps=eps, padding=1)
        r = x - dict_adjoint(z, w, x.shape[-2:], padding=(1, 1))
        code = z.flatten(1).abs().sum(1)
        objs.append(beta / 2 * r.flatten(1).pow(2).sum(1) + (1 - beta) / 2 * smoothed_l1(r, eps) + lam * code)
        l1_objs.append(
            beta / 2 * r.flatten(1).pow(2).sum(1) + (1 - beta) / 2 * r.flatten(1).abs().sum(1) + lam * code
        )
    objs, l1_objs = torch.stack(objs), torch.stack(l1_objs)
    assert (objs[1:] <= objs[:-1] + 1e-10).all()
    slack = eps * x[0].numel()  # ρ_ε and |r| differ by at most ε·log(1+|r|/ε) per entry
    assert (l1_objs[1:] <= l1_objs[:-1] + slack).all()
    assert (objs[-1] < objs[0]).all()


def test_terms_match_definition():
    x, w = torch.randn(2, 3, 6, 6, dtype=D64), torch.randn(4, 3, 3, 3, dtype=D64)
    beta, lam = 0.3, 0.1
    z, terms = rista(x, w, n_steps=2, beta=beta, lam=lam, step=0.05, padding=1, return_terms=True)
    r = x - dict_adjoint(z, w, x.shape[-2:], padding=(1, 1))
    assert torch.allclose(terms.residual_l2_sq[-1], r.flatten(1).pow(2).sum(1))
    assert torch.allclose(terms.residual_l1[-1], r.flatten(1).abs().sum(1))
    assert torch.allclose(terms.code_l1[-1], z.flatten(1).abs().sum(1))
    expect = beta / 2 * terms.residual_l2_sq + (1 - beta) / 2 * terms.residual_l1 + lam * terms.code_l1
    assert torch.allclose(terms.total, expect)
    assert terms.total.shape == (3, 2)


# -- Theorem 4.2: influence functions of the single-step operators ------------------------------
def _operators(w, eps, beta):
    size = (6, 6)

    def E(v):
        return v - dict_adjoint(dict_apply(v, w, padding=(1, 1)), w, size, padding=(1, 1))

    def weight(v):
        return 0.5 / (E(v).abs() + eps)

    return {
        "vanilla": (lambda v: E(v), lambda x, d: E(d - x)),
        "robust": (lambda v: weight(v) * E(v), lambda x, d: 2 * eps * weight(x) ** 2 * E(d - x)),
        "elastic": (
            lambda v: (beta + (1 - beta) * weight(v)) * E(v),
            lambda x, d: (beta + 2 * (1 - beta) * eps * weight(x) ** 2) * E(d - x),
        ),
    }


@pytest.mark.parametrize("kind", ["vanilla", "robust", "elastic"])
def test_influence_functions_match_finite_differences(kind):
    """IF(Δ; P, x) = lim_{t→0+} (P(tΔ + (1−t)x) − P(x))/t. Note: the proof in Appendix B.3 ends
    with −2εw², a sign slip; the theorem's +2εw² is what the limit gives, and what we check."""
    torch.manual_seed(2)
    w = torch.randn(4, 2, 3, 3, dtype=D64) * 0.3
    x, delta = torch.randn(1, 2, 6, 6, dtype=D64), torch.randn(1, 2, 6, 6, dtype=D64)
    P, IF = _operators(w, eps=0.05, beta=0.3)[kind]
    t = 1e-7
    fd = (P(t * delta + (1 - t) * x) - P(x)) / t
    assert torch.allclose(fd, IF(x, delta), rtol=1e-4, atol=1e-6)


# -- gradient policies -------------------------------------------------------------------------
def test_exact_gradient_matches_finite_differences():
    torch.manual_seed(3)
    w = (torch.randn(4, 2, 3, 3, dtype=D64) * 0.3).requires_grad_()
    x = torch.randn(2, 2, 7, 7, dtype=D64, requires_grad=True)
    beta = torch.tensor(0.4, dtype=D64, requires_grad=True)
    f = lambda x, w, b: rista(x, w, n_steps=2, beta=b, lam=0.05, step=0.2, eps=0.05, stride=2, padding=1)
    assert torch.autograd.gradcheck(f, (x, w, beta), eps=1e-6, atol=1e-5)


def test_detached_gradient_treats_w_as_constant():
    """The detached backward equals the exact gradient of the same iteration with each w_t
    frozen at the values of the forward pass."""
    torch.manual_seed(4)
    w = torch.randn(4, 2, 3, 3, dtype=D64) * 0.3
    x = torch.randn(2, 2, 6, 6, dtype=D64, requires_grad=True)
    beta, lam, eta, eps = 0.3, 0.05, 0.2, 0.05
    geom = dict(padding=(1, 1))
    frozen = []
    with torch.no_grad():
        z = dict_apply(x, w, **geom)
        for _ in range(2):
            r = x - dict_adjoint(z, w, x.shape[-2:], **geom)
            wt = reweighting(r, eps, "exact")
            frozen.append(wt)
            z = soft_threshold(z + eta * dict_apply((beta + (1 - beta) * wt) * r, w, **geom), lam * eta)

    def frozen_rista(x):
        z = dict_apply(x, w, **geom)
        for wt in frozen:
            r = x - dict_adjoint(z, w, x.shape[-2:], **geom)
            z = soft_threshold(z + eta * dict_apply((beta + (1 - beta) * wt) * r, w, **geom), lam * eta)
        return z

    g = torch.randn_like(frozen_rista(x))
    det = rista(x, w, n_steps=2, beta=beta, lam=lam, step=eta, eps=eps, w_grad="detached", **geom)
    ex = rista(x, w, n_steps=2, beta=beta, lam=lam, step=eta, eps=eps, w_grad="exact", **geom)
    assert torch.allclose(det, ex)
    (gd,) = torch.autograd.grad((det * g).sum(), x)
    (gr,) = torch.autograd.grad((frozen_rista(x) * g).sum(), x)
    (ge,) = torch.autograd.grad((ex * g).sum(), x)
    assert torch.allclose(gd, gr, atol=1e-12)
    assert not torch.allclose(gd, ge, atol=1e-6)


def test_layer_normalization_and_auto_step():
    """normalize=True runs RISTA on A/‖A‖ and rescales; the norm estimate matches the dense one."""
    layer = DictConv2d(3, 5, 3, 1, 1, mode="vanilla", n_steps=3, lam=0.1).double()
    x = torch.randn(2, 3, 6, 6, dtype=D64)
    z = layer(x)
    sigma = lipschitz(layer.weight.detach(), (3, 6, 6)).sqrt()
    # power iteration estimates from below; the cold start is within 1% and warm steps refine it
    assert float(sigma) * 0.99 < float(layer.dict_norm) <= float(sigma) * (1 + 1e-6)
    w_hat = layer.weight.detach() / layer.dict_norm
    ref = rista(x, w_hat, n_steps=3, beta=1.0, lam=0.1, step=1.0, padding=1) * layer.dict_norm
    assert torch.allclose(z, ref, atol=1e-10)
    # unnormalized with step="auto" uses η = 1/‖A‖²
    layer.configure(normalize=False)
    layer.eval()  # eval: the stored norm is used as is
    ref2 = rista(
        x,
        layer.weight.detach(),
        n_steps=3,
        beta=1.0,
        lam=0.1,
        step=1 / float(layer.dict_norm) ** 2,
        padding=1,
    )
    assert torch.allclose(layer(x), ref2, atol=1e-8)


def test_modes_and_beta_parametrization():
    layer = DictConv2d(2, 3, 3, padding=1, mode="vanilla")
    w0 = layer.weight.detach().clone()
    assert layer.beta == 1.0 and not layer.beta_logit.requires_grad
    layer.set_mode("robust")
    assert layer.beta == 0.0
    layer.set_mode("elastic", beta=0.7)
    assert layer.beta_logit.requires_grad and abs(layer.beta_value() - 0.7) < 1e-6
    layer.set_mode("elastic", beta=1.0)
    assert 0 < layer.beta_value() < 1
    assert torch.equal(layer.weight, w0)
    with pytest.raises(ValueError, match="unknown dictionary mode"):
        layer.set_mode("l1")
    with pytest.raises(ValueError, match="w_grad"):
        layer.w_grad = "bpda"


def test_eval_norm_is_frozen_and_refresh_works():
    layer = DictConv2d(3, 4, 3, padding=1, mode="elastic")
    x = torch.rand(2, 3, 8, 8)
    layer.train()
    layer(x)
    n0 = float(layer.dict_norm)
    layer.eval()
    with torch.no_grad():
        layer.weight.mul_(2.0)
    assert float(layer.dict_norm) == n0  # eval uses the stored norm, like BN running stats
    y1 = layer(x)
    assert abs(layer.refresh_norm((8, 8)) - 2 * n0) < 2e-2 * n0
    assert not torch.equal(layer(x), y1)
