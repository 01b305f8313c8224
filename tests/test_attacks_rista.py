"""Attacks adapted to RISTA layers: BPDA-style surrogate gradients, a reweighting-saturation
loss and EOT for randomized models."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edlnet.attacks import EOTPGD, PGD, ResidualPGD, SurrogatePGD, is_randomized, make_twin
from edlnet.attacks.base import NotApplicable
from edlnet.attacks.structure_loss import layer_residual, saturation
from edlnet.layers import DictConv2d, dict_layers
from edlnet.models import capture_layers, create_model

torch.set_num_threads(1)


def edl_model(seed: int = 0) -> nn.Module:
    """Elastic ResNet-10 (width 8) with BatchNorm statistics and dictionary norms from a few
    training-mode passes, so eval-mode activations are not degenerate; left in train mode."""
    torch.manual_seed(seed)
    model = create_model("resnet10", dl="elastic", width=8)
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, 3, 16, 16))
    return model


def images(n: int = 8, size: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def labels(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's own clean predictions, so every example starts correctly classified."""
    was = model.training
    model.eval()
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    model.train(was)
    return y


def tiny_dict(seed: int, lam: float = 0.1, layer: type = DictConv2d) -> nn.Sequential:
    """One elastic dictionary layer and a linear head, for 3x8x8 inputs."""
    torch.manual_seed(seed)
    return nn.Sequential(
        layer(3, 8, 3, padding=1, mode="elastic", lam=lam), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)
    ).eval()


def test_twins_are_reconfigured_copies():
    model = edl_model().eval()
    x = images()
    with torch.no_grad():
        out = model(x)
    layers = dict_layers(model)
    for kind, check in [
        ("conv", lambda m: m.n_steps == 0),
        ("smooth", lambda m: m.eps == 2.0 and m.n_steps == 2),
        ("vanilla", lambda m: m.mode == "vanilla" and m.beta == 1.0),
    ]:
        twin = make_twin(model, kind, smooth_eps=2.0)
        twin_layers = dict_layers(twin)
        assert len(twin_layers) == len(layers) > 0
        assert all(check(m) for _, m in twin_layers), kind
        assert all(m.n_steps == 2 and m.eps == 0.1 and m.mode == "elastic" for _, m in layers)
        ptrs = {p.data_ptr() for p in model.parameters()}
        assert not ptrs & {p.data_ptr() for p in twin.parameters()}  # nothing shared
        with torch.no_grad():
            assert not torch.allclose(twin(x), out), kind  # a different function ...
        assert torch.equal(twin_layers[0][1].weight, layers[0][1].weight)  # ... same weights
    with pytest.raises(ValueError):
        make_twin(model, "identity")


def test_surrogate_is_judged_on_the_true_model():
    # lam=0.5: the true layer's code is sparse while the conv twin's z0 = A x is dense, so their
    # predictions disagree on many points (measured: 10 of 16 at the returned points).
    model = tiny_dict(seed=0, lam=0.5)
    x = images(16, 8)
    y = labels(model, x)
    attack = SurrogatePGD(model, eps="8/255", twin="conv", steps=10)
    assert all(m.n_steps == 0 for _, m in dict_layers(attack.twin))
    result = attack.run(x, y)
    with torch.no_grad():
        true_logits, twin_logits = model(result.x_adv), attack.twin(result.x_adv)
    assert torch.equal(result.robust, true_logits.argmax(1) == y)
    twin_robust = twin_logits.argmax(1) == y
    assert (twin_robust != result.robust).sum() >= 3
    # The selection ranked iterates by the true model's loss, not the twin's.
    true_loss = F.cross_entropy(true_logits, y, reduction="none")
    twin_loss = F.cross_entropy(twin_logits, y, reduction="none")
    torch.testing.assert_close(result.info["loss"], true_loss)
    assert not torch.allclose(result.info["loss"], twin_loss)
    assert not result.robust.all()  # and the surrogate gradient does break some points


@pytest.mark.parametrize("norm,eps", [("Linf", "8/255"), ("L2", 0.5)])
def test_surrogate_equals_pgd_without_dictionary_layers(norm, eps):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    ).eval()
    x = images(8, 8)
    y = labels(model, x)
    surrogate = SurrogatePGD(model, eps=eps, norm=norm, steps=10, restarts=2, seed=3)
    a = PGD(model, eps=eps, norm=norm, steps=10, restarts=2, seed=3).run(x, y)
    b = surrogate.run(x, y)
    assert surrogate.twinned_layers == 0
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.robust, b.robust)
    assert torch.equal(a.info["loss"], b.info["loss"])
    assert a.info["grad_stats"] == b.info["grad_stats"]
    assert not a.robust.all()  # the comparison is not between two attacks that did nothing


class QuantizedDict(DictConv2d):
    """A dictionary layer whose code is rounded to multiples of 1/16: values within 1/32 of the
    layer's, gradient exactly zero (shattered gradients). With ``n_steps=0`` (the conv twin) it
    is the plain convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return torch.round(out * 16) / 16 if self.n_steps > 0 else out


def test_surrogate_breaks_a_gradient_masking_layer():
    # Shows BPDA matters: through the masked layer PGD gets only zero gradients and moves
    # nowhere, while the conv twin's gradient, judged on the true (masked) model, breaks most
    # points (measured: 2 of 16 survive).
    model = tiny_dict(seed=0, layer=QuantizedDict)
    x = images(16, 8)
    y = labels(model, x)
    pgd = PGD(model, eps="8/255", steps=10, random_start=False).run(x, y)
    bpda = SurrogatePGD(model, eps="8/255", twin="conv", steps=10, random_start=False).run(x, y)
    stats = pgd.info["grad_stats"]
    assert stats["zero"] == stats["evaluations"] > 0 and pgd.accuracy == 1.0
    assert bpda.info["grad_stats"]["zero"] == 0
    assert bpda.accuracy <= 0.5


class RandomPhaseLinear(nn.Module):
    """Linear two-class model plus a random-phase ripple (1/ω)·Σᵢ vᵢ sin(ω xᵢ + φᵢ), φ drawn
    afresh in every forward, in eval mode too. The ripple moves the logits by at most ‖v‖₁/ω
    (predictions are practically deterministic) but adds v·cos(ω x + φ), zero-mean noise 16x
    larger than W, to every input gradient. (Plain additive Gaussian input noise would not do:
    on a linear two-class model it leaves the sign of the gradient unchanged.)"""

    def __init__(self, dim: int = 48, scale: float = 16.0, omega: float = 1e3, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(dim, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(2, dim, generator=g))
            self.lin.bias.zero_()
        self.register_buffer("v", scale * torch.randn(2, dim, generator=g))
        self.omega = omega

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        phase = 2 * math.pi * torch.rand_like(f)
        return self.lin(f) + torch.sin(self.omega * f + phase) @ self.v.T / self.omega


def test_is_randomized():
    noisy = RandomPhaseLinear()
    x = images(4, 4)
    assert is_randomized(noisy, x)
    model = edl_model()  # deterministic, and in train mode: must come back in train mode
    assert not is_randomized(model, images(), n=3)
    assert model.training
    with pytest.raises(ValueError):
        is_randomized(noisy, x, n=1)


def test_eot_beats_pgd_on_a_randomized_model():
    model = RandomPhaseLinear()
    x = 0.25 + 0.5 * images(16, 4, seed=10)
    with torch.no_grad():
        y = model.lin(x.flatten(1)).argmax(dim=1)
    rng = torch.get_rng_state()
    eot = EOTPGD(model, eps=0.15, steps=10, eot_samples=16).run(x, y)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG was forked, not consumed
    again = EOTPGD(model, eps=0.15, steps=10, eot_samples=16).run(x, y)
    assert torch.equal(eot.x_adv, again.x_adv) and torch.equal(eot.robust, again.robust)
    pgd = PGD(model, eps=0.15, steps=10).run(x, y)
    # measured over attack seeds 0-4: PGD 0.5-0.69, EOT-16 0.125-0.19 (the noiseless linear
    # model breaks completely at this budget)
    assert eot.accuracy + 0.25 <= pgd.accuracy
    votes = eot.info["votes"]
    assert bool((votes.sum(dim=1) == 16).all())
    assert torch.equal(eot.robust, votes.gather(1, y[:, None]).squeeze(1) > 8)


def test_layer_residual_matches_solve():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9)
    for normalize in (True, False):
        layer = DictConv2d(
            3,
            5,
            3,
            stride=2,
            padding=1,
            bias=True,
            mode="elastic",
            normalize=normalize,
            step=0.05 if not normalize else "majorize",
        ).eval()
        with torch.no_grad():
            out = layer(x)
            _, terms = layer.solve(x, return_terms=True)
            r = layer_residual(layer, x, out)
        torch.testing.assert_close(r.abs().flatten(1).sum(1), terms.residual_l1[-1])


def test_residual_pgd_saturates_the_reweighting():
    model = edl_model().eval()
    x = images()
    y = labels(model, x)
    attack = ResidualPGD(model, eps="8/255", steps=10)  # kappa=1
    assert attack.layer_names == [dict_layers(model)[0][0]]
    result = attack.run(x, y)
    clean, adv = result.info["residual_term_clean"], result.info["residual_term"]
    torch.testing.assert_close(attack.residual_term(x), clean)
    torch.testing.assert_close(attack.residual_term(result.x_adv), adv)
    assert bool((adv > clean + 0.02).all())  # measured: ~0.77 -> ~0.81 at every example
    # The term, not just any perturbation, moves the saturation: CE-only PGD leaves it at ~0.77.
    pgd = PGD(model, eps="8/255", steps=10).run(x, y)
    assert attack.residual_term(pgd.x_adv).mean() + 0.01 < adv.mean()
    first = dict_layers(model)[0][1]
    with torch.no_grad(), capture_layers(model) as rec:
        model(x)
    name = attack.layer_names[0]
    torch.testing.assert_close(saturation(first, rec[name]["input"], rec[name]["output"]), clean)
    assert len(ResidualPGD(model, eps="8/255", layers="all").layer_names) == len(dict_layers(model))


def test_residual_pgd_needs_a_reweighting_layer():
    # NotApplicable (a ValueError): suites record such an entry as not evaluated.
    with pytest.raises(NotApplicable, match="robust or elastic"):
        ResidualPGD(create_model("resnet10", dl="vanilla", width=8), eps="8/255")
    with pytest.raises(NotApplicable):
        ResidualPGD(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), eps="8/255")
    with pytest.raises(ValueError):
        ResidualPGD(edl_model(), eps="8/255", layers="some")
