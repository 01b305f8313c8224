"""The contract every registered attack honours, checked for each name in the attack registry,
in each of its norms and each of its example variants (``Attack.example``): a new attack is
tested here as soon as it is registered.

On a small dictionary network in training mode: adversarial points inside the budget and the
[0, 1] box, fp32 and detached; eval mode during the attack, every submodule's mode, BatchNorm
statistics, dictionary-layer configuration and parameter gradients left as they were; the
same seed giving the same points; settings that survive a JSON round trip; and, for attacks
that follow the model's gradients, every gradient counted for the masking checks.
"""

from __future__ import annotations

import json

import pytest
import torch
from helpers import PolicyProbe
from torch import nn

from edlnet.attacks import ATTACKS, perturbation_norm, register_attack
from edlnet.attacks.base import EXAMPLE_EPS, Attack, parse_eps
from edlnet.evaluation import evaluate
from edlnet.layers import DictConv2d, dict_layers
from edlnet.registry import RegistryError

torch.set_num_threads(1)


def dict_net(seed: int = 0) -> nn.Sequential:
    """Probe, an elastic dictionary layer (so attacks on reweighting layers apply), BatchNorm
    and a linear head, for 3x6x6 images; left in training mode."""
    torch.manual_seed(seed)
    return nn.Sequential(
        PolicyProbe(),
        DictConv2d(3, 4, 3, padding=1, mode="elastic", lam=0.1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 10),
    )


def images_and_labels(model: nn.Module, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Images touching both faces of the box, labelled with the model's own predictions so that
    every attack has something to break."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, 6, 6, generator=g)
    x[:, 0, 0, :] = 0.0
    x[:, 1, 0, :] = 1.0
    was = model.training
    with torch.no_grad():
        y = model.eval()(x).argmax(dim=1)
    model.train(was)
    return x, y


CASES = [
    pytest.param(name, norm, variant, id=f"{name}-{norm}-{variant}")
    for name, cls in ATTACKS.items()
    for norm in cls.norms
    if norm in EXAMPLE_EPS
    for variant in range(len(cls.example_settings))
]


@pytest.mark.parametrize("name, norm, variant", CASES)
def test_stays_in_budget_and_box(name, norm, variant):
    model = dict_net()
    x, y = images_and_labels(model)
    attack = ATTACKS.get(name).example(model, norm, variant)
    x_adv = attack(x, y)
    assert attack.norm == norm
    assert x_adv.dtype == torch.float32 and not x_adv.requires_grad
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    size = perturbation_norm(x_adv - x, norm)
    assert (size <= parse_eps(EXAMPLE_EPS[norm])[1] * (1 + 1e-6) + 1e-7).all(), size


@pytest.mark.parametrize("name, norm, variant", CASES)
def test_leaves_the_model_as_it_found_it(name, norm, variant):
    model = dict_net()
    x, y = images_and_labels(model)
    model.train()
    model[2].eval()  # a submodule deliberately in eval inside a training model
    modes = [m.training for m in model.modules()]
    stats = model[2].running_mean.clone()
    configs = [layer.config() for _, layer in dict_layers(model)]
    probe = model[0]
    probe.seen.clear()
    ATTACKS.get(name).example(model, norm, variant)(x, y)
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(model[2].running_mean, stats)  # BatchNorm never saw a training step
    assert [layer.config() for _, layer in dict_layers(model)] == configs  # twins are copies
    assert probe.seen and not any(training for *_, training in probe.seen)
    assert all(not autocast and dtype == torch.float32 for _, autocast, dtype, _ in probe.seen)
    assert all(p.grad is None for p in model.parameters())  # only input gradients


@pytest.mark.parametrize("name, norm, variant", CASES)
def test_is_deterministic_and_records_its_settings(name, norm, variant):
    model = dict_net().eval()
    x, y = images_and_labels(model)
    cls = ATTACKS.get(name)
    first = cls.example(model, norm, variant).run(x, y)
    again = cls.example(model, norm, variant).run(x, y)
    assert torch.equal(first.x_adv, again.x_adv) and torch.equal(first.robust, again.robust)
    settings = cls.example(model, norm, variant).settings()
    assert json.loads(json.dumps(settings)) == settings
    assert settings["name"] == cls.name and settings["norm"] == norm
    if cls.follows_model_gradients:  # _sanitize_grad saw every gradient the masking checks count
        assert first.info["grad_stats"]["evaluations"] > 0


def test_register_attack_names_what_is_missing():
    class Unnamed(Attack):
        norms = ("Linf",)

        def _perturb(self, x, y):
            return x, {}

    with pytest.raises(RegistryError, match=r"suite_name.*follows_model_gradients"):
        register_attack(Unnamed)
    with pytest.raises(RegistryError, match="registered twice"):

        @register_attack
        class AnotherPGD(ATTACKS.get("pgd")):
            suite_name = "pgd"
            follows_model_gradients = True
            norms = ("Linf",)


def test_a_registered_attack_is_usable_in_suites(monkeypatch):
    monkeypatch.setattr(ATTACKS, "_items", dict(ATTACKS._items))  # registered for this test only

    @register_attack
    class Identity(Attack):
        """Returns the clean images: the model keeps its clean accuracy."""

        name = "identity"
        suite_name = "identity"
        follows_model_gradients = False
        norms = ("Linf",)

        def _perturb(self, x, y):
            return x.clone(), {}

    model = dict_net().eval()
    x, y = images_and_labels(model, 4)
    suite = {"name": "new", "entries": [{"name": "id", "attack": "identity", "eps": "8/255"}]}
    record = evaluate(model, x, y, suite=suite, log=None)
    assert record["attacks"] == {"id": record["clean"]} and record["clean"] == 1.0
    assert record["entries"]["id"]["w_grad"] == "model"  # not a gradient attack: run once
