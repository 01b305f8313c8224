"""Pursuit networks (deep-pursuit paper): solvers, models, and their properties."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import edlnet
from edlnet.layers.pursuit import (
    Edge,
    LayerOp,
    deep_pursuit,
    edge_adjoint,
    edge_apply,
    gather,
    global_dictionary,
    layer_terms,
    layered_basis_pursuit,
    layered_thresholding_pursuit,
    normalized_gram,
)

torch.set_num_threads(1)

MODELS = ["layered_thresholding_pursuit", "layered_basis_pursuit", "deep_pursuit", "deep_pursuit_residual"]
SMALL = dict(widths=(4, 8), strides=(1, 2), lam=0.05)  # stem + 2 blocks = 5 layers


def images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def build(name: str, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    if name != "layered_thresholding_pursuit":
        kw.setdefault("n_iters", 2)
    return edlnet.create_model(name, **SMALL, **kw)


def random_chain_ops(seed: int = 0) -> tuple[list[LayerOp], list[list[Edge]]]:
    """Three conv layers (one strided) with BN-like offsets of both signs and λ per channel."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(4, 3, 1), (6, 4, 2), (6, 6, 1)]
    ops = [
        LayerOp(
            0.3 * torch.randn(d, c, 3, 3, generator=g),
            0.2 * torch.randn(d, generator=g),
            0.05 + 0.1 * torch.rand(d, generator=g),
            1.0,
            (s, s),
            (1, 1),
        )
        for d, c, s in shapes
    ]
    return ops, [[Edge(j)] for j in range(len(ops))]


# -- the parameter-free skip operator -----------------------------------------------------------
def test_edge_adjoint_is_exact():
    g = torch.Generator().manual_seed(0)
    edge = Edge(1, stride=2, channels=6)
    v = torch.randn(2, 4, 7, 7, generator=g, dtype=torch.float64)
    u = torch.randn(2, 6, 4, 4, generator=g, dtype=torch.float64)
    lhs = (edge_apply(edge, v) * u).sum()
    rhs = (v * edge_adjoint(edge, u, v.shape)).sum()
    assert torch.allclose(lhs, rhs)


# -- feed-forward = layered thresholding pursuit = conv → BN → ReLU(· − λ) ------------------------
def reference_layer(layer, h: torch.Tensor, training: bool) -> torch.Tensor:
    pre = F.conv2d(h, layer.weight, None, layer.stride, layer.padding)
    rm, rv = layer.norm.running_mean.clone(), layer.norm.running_var.clone()
    bn = F.batch_norm(pre, rm, rv, layer.gain, None, training, layer.norm.momentum, layer.norm.eps)
    layer.expected_stats = (rm, rv)
    return F.relu(bn - F.softplus(layer.lam_raw).view(1, -1, 1, 1))


def reference_logits(model, x: torch.Tensor, residual: bool, training: bool) -> torch.Tensor:
    """A plain conv–BN–ReLU network (chain, or ResNet with option-A shortcuts) written out by
    hand from the model's parameters."""
    stem, a1, b1, a2, b2 = model.pursuit.layers
    h = reference_layer(stem, model.normalize(x), training)
    out1 = reference_layer(b1, reference_layer(a1, h, training), training)
    stream = h + out1 if residual else out1
    out2 = reference_layer(b2, reference_layer(a2, stream, training), training)
    if residual:
        out2 = out2 + F.pad(stream[..., ::2, ::2], (0, 0, 0, 0, 0, 4))
    return model.fc(out2.mean((2, 3)))


@pytest.mark.parametrize("name", MODELS)
def test_feedforward_pass_is_the_conv_bn_relu_network(name):
    residual = name == "deep_pursuit_residual"
    model = build(name, **({} if name == "layered_thresholding_pursuit" else {"n_iters": 0}))
    x = images()
    for training in (True, False):
        model.train(training)
        expected = reference_logits(model, x, residual, training)
        assert torch.allclose(model(x), expected, atol=1e-5)
        for layer in model.pursuit.layers:  # running statistics updated as BatchNorm does
            assert torch.allclose(layer.norm.running_mean, layer.expected_stats[0], atol=1e-6)
            assert torch.allclose(layer.norm.running_var, layer.expected_stats[1], atol=1e-6)


def test_one_deep_pursuit_sweep_from_zero_is_the_feedforward_pass():
    """Algorithm 2 with one outer iteration, unit steps and no extrapolation, started at zero,
    is layered thresholding pursuit: the reason it is initialized with the feed-forward pass."""
    ops, parents = random_chain_ops()
    x = images(3)
    ff = layered_thresholding_pursuit(x, ops, parents)
    dp = deep_pursuit(x, ops, parents, n_iters=1, alphas=0.0, init="zeros")
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ff, dp))
    assert any(w.abs().sum() > 0 for w in ff)  # not vacuous
    assert all(torch.equal(a, b) for a, b in zip(ff, deep_pursuit(x, ops, parents, n_iters=0)))
    assert all(torch.equal(a, b) for a, b in zip(ff, layered_basis_pursuit(x, ops, parents, 0)))


def test_extrapolation_does_not_change_the_first_sweep():
    ops, parents = random_chain_ops(1)
    ops = [op._replace(step=0.5) for op in ops]
    x = images(2)
    plain = deep_pursuit(x, ops, parents, n_iters=1)
    assert all(torch.equal(a, b) for a, b in zip(plain, deep_pursuit(x, ops, parents, n_iters=1, alphas=0.5)))
    two = deep_pursuit(x, ops, parents, n_iters=2)
    assert any(
        not torch.allclose(a, b) for a, b in zip(two, deep_pursuit(x, ops, parents, n_iters=2, alphas=0.5))
    )


# -- descent with conservative, fixed steps ------------------------------------------------------
def assert_non_increasing(values: torch.Tensor) -> None:
    """values: (T + 1, ...) along iterations."""
    tol = 1e-5 * values.abs().max() + 1e-6
    assert (values[1:] - values[:-1]).max() <= tol
    assert (values[0] - values[-1]).max() > 100 * tol  # the iterations do make progress


@pytest.mark.parametrize("nonneg", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_layered_basis_pursuit_local_objectives_never_increase(nonneg, training):
    model = build("layered_basis_pursuit", n_iters=6, beta=1.0, learn_step=False, nonneg=nonneg)
    model(images(4, seed=1))  # non-trivial running statistics for the eval case
    model.train(training)
    trace = model.trace(images())
    assert trace.objective.shape == (7, 5, 4)
    assert_non_increasing(trace.objective)  # every layer's Eq. 7, every example


@pytest.mark.parametrize("name", ["deep_pursuit", "deep_pursuit_residual"])
@pytest.mark.parametrize("training", [True, False])
def test_deep_pursuit_global_objective_never_increases(name, training):
    model = build(name, n_iters=6, beta=1.0, learn_step=False, alpha=0.0)
    model(images(4, seed=1))
    model.train(training)
    trace = model.trace(images())
    assert_non_increasing(trace.objective.sum(1))  # Eq. 11 (with Eq. 16's skips), per example


def test_reconstruction_errors_per_layer_per_iteration():
    model = build("deep_pursuit_residual", n_iters=3).eval()
    errors = model.reconstruction_errors(images())
    assert errors.shape == (4, 5)
    assert torch.isfinite(errors).all() and (errors >= 0).all()


# -- the global dictionary (Eqs. 12 and 16) -------------------------------------------------------
@pytest.mark.parametrize("name", ["deep_pursuit", "deep_pursuit_residual"])
def test_global_dictionary_reproduces_the_global_data_term(name):
    model = build(name).eval()
    parents = model.pursuit.parents
    ops = [layer.eval_op() for layer in model.pursuit.layers]
    x = images(1)
    g = torch.Generator().manual_seed(3)
    nodes = [x]
    for j, op in enumerate(ops, 1):  # random non-negative codes of the right shapes
        v = gather(parents[j - 1], nodes)
        shape = F.conv2d(v, op.weight, None, op.stride, op.padding).shape
        nodes.append(torch.rand(shape, generator=g))
    data_term = sum(
        0.5 * layer_terms(op, gather(parents[j - 1], nodes), nodes[j])[0] for j, op in enumerate(ops, 1)
    )
    big = global_dictionary(ops, parents, (3, 8, 8))
    target = torch.zeros(big.shape[0])
    target[: x.numel()] = x.flatten()  # t = [x; 0; …; 0]: only the stem reconstructs x
    codes = torch.cat([w.flatten() for w in nodes[1:]])
    assert torch.allclose(0.5 * (target - big @ codes).pow(2).sum(), data_term, rtol=1e-4)
    gram = model.global_gram((8, 8))
    assert gram.shape == (big.shape[1],) * 2
    assert torch.allclose(gram.diagonal(), torch.ones(big.shape[1]), atol=1e-5)
    assert torch.allclose(gram, normalized_gram(big), atol=1e-6)


# -- every registered pursuit model -------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_finite(name):
    extra = {"learn_alpha": True, "alpha": 0.3} if name.startswith("deep") else {}
    model = build(name, **extra).train()
    x = images(2).requires_grad_(True)
    loss = F.cross_entropy(model(x), torch.tensor([1, 7]))
    loss.backward()
    assert torch.isfinite(loss)
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", MODELS)
def test_eval_outputs_independent_of_batch_composition(name):
    model = build(name)
    model(images(4, seed=1))  # move the running statistics away from their initial values
    model.eval()
    x = images(5)
    with torch.no_grad():
        full = model(x)
        singles = torch.cat([model(x[i : i + 1]) for i in range(5)])
        perm = torch.tensor([3, 0, 4, 2, 1])
        permuted = model(x[perm])[torch.argsort(perm)]
    assert torch.allclose(full, singles, atol=1e-5)
    assert torch.allclose(full, permuted, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, tmp_path):
    extra = {"learn_alpha": True, "alpha": 0.2} if name.startswith("deep") else {}
    model = build(name, **extra)
    model(images(4, seed=1))
    model.eval()
    edlnet.save(model, tmp_path / "ckpt")
    loaded = edlnet.load(tmp_path / "ckpt")
    x = images(3)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_options_that_do_not_apply_are_rejected():
    with pytest.raises(ValueError):
        edlnet.create_model("layered_thresholding_pursuit", n_iters=2)
    with pytest.raises(ValueError):
        edlnet.create_model("layered_basis_pursuit", alpha=0.5)
    with pytest.raises(ValueError):
        edlnet.create_model("deep_pursuit", n_steps=2)
    with pytest.raises(ValueError):
        edlnet.create_model("deep_pursuit_residual", widths=(8, 4), strides=(1, 2))
