"""The contract every registered training objective meets, parametrized over the registry: a new
objective module is tested here without editing this file.

Each objective trains a step through the real trainer with a finite loss, lowers its own loss on
a fixed batch, round-trips its options through the config, and rejects unknown options by name.
"""

import ast
import contextlib
import dataclasses
import math
from pathlib import Path

import pytest
import torch
import yaml

import edlnet
from edlnet.train import OBJECTIVES, ConfigError, TrainConfig, load_config, register_objective
from edlnet.train.loop import Trainer
from edlnet.train.objectives import OptionsError, create_objective, option_keys, options_dict, parse_options
from edlnet.train.objectives.base import Context, Objective

NAMES = OBJECTIVES.names()


@pytest.fixture(scope="module")
def helper_checkpoint(tmp_path_factory):
    """A tiny plain model's checkpoint, for objectives that name a helper model (HAT)."""
    path = tmp_path_factory.mktemp("helper") / "std"
    torch.manual_seed(1)
    edlnet.save(edlnet.create_model("resnet10", width=4).eval(), path)
    return str(path)


def _options(name: str, helper_checkpoint: str) -> dict:
    cls = OBJECTIVES.get(name)
    return {cls.helper_model: helper_checkpoint} if cls.helper_model else {}


def _tiny(tmp_path, **kw) -> TrainConfig:
    base = dict(
        model="resnet10",
        model_kwargs={"width": 4},
        dl="vanilla",
        dl_options={"n_steps": 1},
        switch_to_elastic_epoch=None,
        epochs=1,
        train_subset=16,
        val_size=0,
        test_subset=8,
        batch_size=16,
        attack_steps=2,
        val_attack_steps=0,
        out_dir=str(tmp_path),
        device="cpu",
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_the_registry_holds_every_objective_of_the_package():
    assert {"standard", "pgd_at", "trades", "mart", "hat"} <= set(NAMES)
    for name in NAMES:
        cls = OBJECTIVES.get(name)
        assert issubclass(cls, Objective) and cls.name == name
        assert dataclasses.is_dataclass(cls.Options)


@pytest.mark.parametrize("name", NAMES)
def test_trains_one_step_through_the_trainer(name, tmp_path, helper_checkpoint):
    cfg = _tiny(tmp_path, objective=name, objective_options=_options(name, helper_checkpoint))
    trainer = Trainer(cfg, progress=False)
    trainer._start(None)
    trainer.ddp = trainer._wrap()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    record = trainer.train_epoch(0)
    assert math.isfinite(record["train_loss"])
    accuracy = "train_adv_acc" if OBJECTIVES.get(name).adversarial else "train_clean_acc"
    assert 0.0 <= record[accuracy] <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    # the run folder records every option, defaults filled in
    stored = yaml.safe_load((trainer.run_dir / "config.yaml").read_text())
    assert stored["objective_options"] == options_dict(OBJECTIVES.get(name).Options(**cfg.objective_options))


@pytest.mark.parametrize("name", NAMES)
def test_lowers_its_own_loss(name, tmp_path):
    torch.manual_seed(0)
    cfg = _tiny(tmp_path, objective=name, attack_steps=3)
    objective = create_objective(name, cfg.objective_options)
    model = edlnet.create_model("resnet10", width=4, dl="elastic")
    helper = edlnet.create_model("resnet10", width=4).eval() if objective.helper_model else None
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ctx = lambda: Context(cfg.adversary(), torch.Generator().manual_seed(0), contextlib.nullcontext, helper)
    model.train()
    first, logits = objective(model, x, y, ctx())
    assert logits.shape == (16, 10)
    for _ in range(6):
        loss, _ = objective(model, x, y, ctx())
        opt.zero_grad()
        loss.backward()
        opt.step()
    last, _ = objective(model, x, y, ctx())
    assert math.isfinite(last.item()) and last.item() < first.item()


@pytest.mark.parametrize("name", NAMES)
def test_options_round_trip(name, tmp_path, helper_checkpoint):
    defaults = OBJECTIVES.get(name).Options()
    assert parse_options(name, options_dict(defaults)) == defaults
    assert list(options_dict(defaults)) == option_keys(name)
    cfg = TrainConfig(objective=name, objective_options=_options(name, helper_checkpoint))
    assert TrainConfig(**cfg.to_dict()) == cfg  # a config holds every option, defaults filled in
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert load_config(path) == cfg
    for key, value in options_dict(defaults).items():  # each option is settable by --set
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            sets = [f"objective={name}", f"objective_options.{key}={value * 2}"]
            sets += [f"objective_options.{k}={v}" for k, v in _options(name, helper_checkpoint).items()]
            assert load_config(None, sets).objective_options[key] == value * 2


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_rejected_with_the_valid_ones(name):
    valid = option_keys(name)
    with pytest.raises(ConfigError, match=f"objective {name} has no option 'nonsense'; its options: ") as e:
        load_config(None, [f"objective={name}", "objective_options.nonsense=1"])
    assert all(k in str(e.value) for k in valid)
    with pytest.raises(OptionsError, match="nonsense"):
        create_objective(name, {"nonsense": 1})


def test_unknown_objective_lists_the_registered_ones():
    with pytest.raises(ConfigError, match=r"objective='sgd' is not one of \(.*'trades'"):
        load_config(None, ["objective=sgd"])
    with pytest.raises(ConfigError, match="objective='sgd'"):
        TrainConfig(objective="sgd")


def test_a_new_objective_is_one_registered_class(tmp_path, monkeypatch):
    """What a newcomer writes: a class with a name, an Options dataclass and __call__; the config
    and the trainer take it with no other change."""
    monkeypatch.setattr(OBJECTIVES, "_items", dict(OBJECTIVES._items))  # undone after the test

    @dataclasses.dataclass(frozen=True)
    class ScaledOptions:
        scale: float = 1.0

    @register_objective
    class Scaled(Objective):
        name = "scaled_ce"
        Options = ScaledOptions
        adversarial = False

        def __call__(self, model, x, y, ctx):
            with ctx.autocast():
                logits = model(x)
            return self.options.scale * torch.nn.functional.cross_entropy(logits.float(), y), logits

    cfg = load_config(None, ["objective=scaled_ce", "objective_options.scale=0.5"])
    assert cfg.objective_options == {"scale": 0.5} and cfg.resolved_best_metric() == "val_clean_acc"
    trainer = Trainer(_tiny(tmp_path, objective="scaled_ce"), progress=False)
    trainer._start(None)
    trainer.ddp = trainer._wrap()
    assert math.isfinite(trainer.train_epoch(0)["train_loss"])
    with pytest.raises(TypeError, match="Options must be a dataclass"):
        register_objective(type("Bad", (Objective,), {"name": "bad", "Options": dict}))


def test_helper_model_is_required_by_class_not_by_name(tmp_path):
    with pytest.raises(OptionsError, match="objective=hat needs objective_options.std_model"):
        Trainer(_tiny(tmp_path, objective="hat"), progress=False)


def test_the_trainer_never_names_an_objective():
    """The loop asks the objective's class what it needs; no objective name appears in it."""
    source = Path(edlnet.train.loop.__file__).read_text()
    strings = {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant)}
    assert not strings & set(NAMES)
