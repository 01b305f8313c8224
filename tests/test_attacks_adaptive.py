"""Worst case over w_grad policies, and transfer from a surrogate."""

from __future__ import annotations

import json

import torch
from torch import nn

from edlnet.attacks import PGD, Adaptive, CarliniWagnerL2, Transfer, adaptive, transfer_attack

torch.set_num_threads(1)


class PolicyDependentGradient(nn.Module):
    """Identity in value; its backward pass is exact under "exact" and sign-flipped under
    "detached" (the wrong-sign gradients measured for detached reweighting). Records what it
    ran under."""

    def __init__(self) -> None:
        super().__init__()
        self.w_grad = "exact"
        self.seen: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.w_grad)
        if self.w_grad == "exact":
            return x
        return 2 * x.detach() - x


def linear(seed: int, layer: nn.Module | None = None) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(12, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(2, 12, generator=g))
        lin.bias.copy_(torch.randn(2, generator=g))
    return nn.Sequential(*([layer] if layer is not None else []), nn.Flatten(), lin)


def problem(model: nn.Module, n: int = 16):
    x = 0.3 + 0.4 * torch.rand(n, 3, 2, 2, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return x, y


def test_adaptive_keeps_worst_case_over_policies():
    probe = PolicyDependentGradient()
    probe.w_grad = "detached"
    model = linear(0, probe)
    x, y = problem(model)
    probe.seen.clear()
    pgd = PGD(model, eps=0.25, steps=10, w_grad="exact")
    result = Adaptive(pgd).run(x, y)
    by_policy = result.info["robust_by_policy"]
    assert set(probe.seen) == {"exact", "detached"} and probe.w_grad == "detached"
    # The flipped gradient hides breakable points from the detached run only.
    assert (by_policy["detached"] & ~by_policy["exact"]).any()
    assert torch.equal(result.robust, by_policy["exact"] & by_policy["detached"])
    assert pgd.w_grad == "exact"  # the caller's attack is not modified
    with torch.no_grad():
        assert torch.equal(model(result.x_adv).argmax(1) == y, result.robust)
    assert (result.x_adv - x).abs().max() <= 0.25 + 1e-6
    chosen = result.info["chosen_policy"]
    assert all(chosen[i] == "exact" for i in (~by_policy["exact"]).nonzero().flatten().tolist())
    settings = Adaptive(pgd).settings()
    assert json.loads(json.dumps(settings)) == settings
    assert settings["policies"] == ["exact", "detached"] and settings["attack"]["name"] == "pgd"


def test_adaptive_runs_once_without_dictionary_layers():
    model = linear(0)
    x, y = problem(model)
    pgd = PGD(model, eps=0.25, steps=10)
    result = adaptive(pgd, x, y)
    assert list(result.info["robust_by_policy"]) == ["None"]
    assert torch.equal(result.x_adv, pgd(x, y))


def test_adaptive_minimal_norm_prefers_smaller_perturbation():
    probe = PolicyDependentGradient()
    model = linear(0, probe)
    x, y = problem(model, n=4)
    cw = CarliniWagnerL2(model, steps=50, lr=0.05, binary_search_steps=3, initial_const=1.0)
    result = adaptive(cw, x, y)
    norms = {p: info["norm"] for p, info in result.info["by_policy"].items()}
    kept = (result.x_adv - x).flatten(1).norm(dim=1)
    assert torch.allclose(kept, torch.minimum(norms["exact"], norms["detached"]), atol=1e-5)


def test_transfer_crafts_on_surrogate_and_judges_target():
    surrogate, target = linear(0), linear(1)
    x, _ = problem(surrogate)
    with torch.no_grad():
        y = surrogate(x).argmax(dim=1)
    source = PGD(surrogate, eps=0.25, steps=10)
    result = transfer_attack(source, target, x, y)
    assert torch.equal(result.x_adv, source(x, y))
    with torch.no_grad():
        assert torch.equal(result.robust, target(result.x_adv).argmax(1) == y)
        assert torch.equal(result.info["source_robust"], surrogate(result.x_adv).argmax(1) == y)
    # Attacking a model through itself is the white-box attack.
    assert torch.equal(Transfer(surrogate, source).run(x, y).robust, source.run(x, y).robust)
    settings = Transfer(target, source).settings()
    assert settings["source"]["name"] == "pgd" and settings["eps"] == 0.25
    assert json.loads(json.dumps(settings)) == settings


def test_adaptive_runs_on_a_real_dictionary_layer():
    from edlnet.layers import DictConv2d

    torch.manual_seed(0)
    layer = DictConv2d(3, 4, 3, w_grad="detached")
    model = nn.Sequential(layer, nn.Flatten(), nn.Linear(4 * 4 * 4, 10)).train()
    x = torch.rand(4, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model.eval()(x).argmax(dim=1)
    model.train()
    result = adaptive(PGD(model, eps="8/255", steps=3), x, y)
    assert list(result.info["robust_by_policy"]) == ["exact", "detached"]
    assert layer.w_grad == "detached" and model.training
    for info in result.info["by_policy"].values():
        assert info["grad_stats"]["evaluations"] == 3 * 4
    assert (result.x_adv - x).abs().max() <= 8 / 255 + 1e-6


def test_per_policy_columns_say_which_examples_each_policy_attacked():
    """Without cascade every policy attacks every example; with cascade a later policy attacks
    only what the earlier ones left robust (the record then has no verdict of its own there)."""
    import edlnet
    from edlnet.attacks import PGD, Adaptive

    torch.manual_seed(0)
    model = edlnet.create_model("resnet10", dl="elastic", width=4).eval()
    x = torch.rand(8, 3, 16, 16)
    with torch.no_grad():
        y = model(x).argmax(1)
    attack = PGD(model, eps="8/255", steps=3)
    full = Adaptive(attack).run(x, y).info["ran_by_policy"]
    assert all(bool(m.all()) for m in full.values())
    cascaded = Adaptive(attack, cascade=True).run(x, y)
    ran = cascaded.info["ran_by_policy"]
    first = cascaded.info["robust_by_policy"]["exact"]
    assert bool(ran["exact"].all()) and torch.equal(ran["detached"], first)
