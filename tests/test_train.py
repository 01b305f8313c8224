"""Training: two-stage switch, resume equals uninterrupted, configs. (Each objective's contract:
tests/test_train_objectives.py.)"""

import pytest
import torch

import edlnet
from edlnet.train import ConfigError, TrainConfig, load_config, lr_at
from edlnet.train.loop import Trainer, build_optimizer


def tiny_cfg(tmp_path, **kw):
    base = dict(
        model="resnet10",
        model_kwargs={"width": 4},
        dl="vanilla",
        switch_to_elastic_epoch=1,
        epochs=2,
        train_subset=96,
        val_size=32,
        test_subset=32,
        batch_size=32,
        val_attack_steps=1,
        attack_steps=2,
        out_dir=str(tmp_path),
        lr=0.05,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_two_stage_switch_keeps_weights_and_trains_beta(tmp_path):
    cfg = tiny_cfg(tmp_path, epochs=2, switch_to_elastic_epoch=1)
    trainer = Trainer(cfg, progress=False)
    trainer._start(None)
    trainer.ddp = trainer._wrap()
    trainer.train_epoch(0)
    assert all(m.mode == "vanilla" for _, m in edlnet.dict_layers(trainer.model))
    beta_group = [g for g in trainer.optimizer.param_groups if g["name"] == "beta"][0]
    assert all(p.grad is None for p in beta_group["params"])
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer._switch_if_due(1)
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the switch touches no weight
    betas0 = edlnet.betas(trainer.model)
    trainer.train_epoch(1)
    assert all(m.mode == "elastic" for _, m in edlnet.dict_layers(trainer.model))
    assert all(p.grad is not None for p in beta_group["params"])
    assert edlnet.betas(trainer.model) != betas0  # β is in the optimizer and moved


def test_resume_equals_uninterrupted(tmp_path):
    cfg = tiny_cfg(tmp_path / "a", epochs=3, switch_to_elastic_epoch=1, objective="pgd_at")
    full = Trainer(cfg, progress=False).fit()
    cfg_b = tiny_cfg(tmp_path / "b", epochs=3, switch_to_elastic_epoch=1, objective="pgd_at")
    run_b = Trainer(cfg_b, progress=False).fit(stop_after=2)  # "killed" after epoch 2 (post-switch)
    resumed = edlnet.train.train(resume=run_b, progress=False)
    a = edlnet.load(full / "checkpoints" / "last").state_dict()
    b = edlnet.load(resumed / "checkpoints" / "last").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bitwise: the resume restores every state
    lines_a = (full / "metrics.jsonl").read_text().splitlines()
    lines_b = (resumed / "metrics.jsonl").read_text().splitlines()
    assert len(lines_a) == len(lines_b) == 3


def test_run_folder_contents(tmp_path):
    run = Trainer(tiny_cfg(tmp_path, epochs=1, switch_to_elastic_epoch=None), progress=False).fit()
    for f in (
        "config.yaml",
        "environment.json",
        "metrics.jsonl",
        "train_results.json",
        "checkpoints/last/model.safetensors",
        "checkpoints/last/train_state.safetensors",
        "checkpoints/last/train_state.json",
        "checkpoints/last/metrics.jsonl",
        "checkpoints/last/manifest.json",
        "checkpoints/best/model.json",
    ):
        assert (run / f).exists(), f
    rec = edlnet.records.read_jsonl(run / "metrics.jsonl")[0]
    for key in (
        "epoch",
        "lr",
        "train_loss",
        "val_clean_acc",
        "val_robust_acc",
        "betas",
        "seconds",
        "images_per_s",
    ):
        assert key in rec
    assert edlnet.load(run / "checkpoints" / "best")(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_nan_loss_stops_with_message(tmp_path):
    cfg = tiny_cfg(tmp_path, epochs=1, lr=1e30, switch_to_elastic_epoch=None, dl=None)
    with pytest.raises(edlnet.train.TrainingDiverged, match="loss became"):
        Trainer(cfg, progress=False).fit()


def test_schedule():
    cfg = TrainConfig()
    assert (
        lr_at(cfg, 0) == 0.1 and abs(lr_at(cfg, 100) - 0.01) < 1e-12 and abs(lr_at(cfg, 150) - 0.001) < 1e-12
    )
    cos = TrainConfig(schedule="cosine", epochs=10)
    assert lr_at(cos, 0) == 0.1 and lr_at(cos, 5) == pytest.approx(0.05)


def test_optimizer_groups_hold_beta_without_decay():
    model = edlnet.create_model("resnet10", width=4, dl="vanilla")
    opt = build_optimizer(TrainConfig(weight_decay=5e-4), model)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["beta"]["weight_decay"] == 0 and groups["decay"]["weight_decay"] == 5e-4
    assert len(groups["beta"]["params"]) == len(edlnet.dict_layers(model))


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'epoch'"):
        load_config(None, ["epoch=3"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("objective: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="objective='sgd'"):
        load_config(None, ["objective=sgd"])
    with pytest.raises(ConfigError, match=r"objective=hat needs objective_options.std_model=<checkpoint"):
        load_config(None, ["objective=hat"])
    cfg = load_config(None, ["eps=4/255", "dl_options.lam=0.2", "model_kwargs.width=8"])
    assert cfg.eps_value() == pytest.approx(4 / 255) and cfg.dl_options == {"lam": 0.2}


def test_every_config_file_parses_in_the_current_form():
    import warnings
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "configs").glob("*.yaml")) + [root / "edlnet" / "configs" / "demo.yaml"]
    assert len(files) > 1, "configs/*.yaml missing"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no committed config uses a deprecated key
        for f in files:
            load_config(f)


@pytest.mark.parametrize("norm,eps", [("Linf", 8 / 255), ("L2", 0.5)])
def test_training_adversary_stays_in_budget_and_raises_loss(norm, eps):
    import torch.nn.functional as F

    from edlnet.train.adversary import pgd_train

    model = edlnet.create_model("resnet10", width=4).eval()
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    loss = lambda out: F.cross_entropy(out, y, reduction="sum")
    x_adv = pgd_train(model, x, loss, eps, eps / 4, 5, norm=norm, generator=torch.Generator().manual_seed(0))
    d = (x_adv - x).flatten(1)
    size = d.abs().max(1).values if norm == "Linf" else d.norm(dim=1)
    assert (size <= eps + 1e-6).all() and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        assert loss(model(x_adv)) > loss(model(x))


def test_compile_option_trains_like_eager(tmp_path):
    """``compile: <backend>`` runs the model through torch.compile (the "eager" backend here: it
    exercises Dynamo's capture of the dictionary layers without a C++ build) and ends with the
    weights of an uncompiled run; a bad value is a config error."""
    runs = {}
    for name, compile_opt in (("plain", False), ("compiled", "eager")):
        cfg = tiny_cfg(tmp_path / name, epochs=2, switch_to_elastic_epoch=1, compile=compile_opt, val_size=0)
        trainer = Trainer(cfg, progress=False)
        runs[name] = trainer.fit()
        if compile_opt:
            assert isinstance(trainer.ddp, torch._dynamo.eval_frame.OptimizedModule)
    a = edlnet.load(runs["plain"] / "checkpoints" / "last").state_dict()
    b = edlnet.load(runs["compiled"] / "checkpoints" / "last").state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    with pytest.raises(ConfigError, match="compile"):
        load_config(None, ["compile=7"])


def test_cli_reports_divergence_in_one_line(tmp_path, capsys):
    from edlnet.cli import main

    sets = [
        "model=resnet10",
        "model_kwargs.width=4",
        "dl=null",
        "train_subset=64",
        "val_size=0",
        "test_subset=8",
        "batch_size=32",
        "epochs=1",
        "lr=1.0e+30",
        f"out_dir={tmp_path}",
    ]
    assert main(["train", "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 1
    assert "edlnet train: stopped: loss became" in capsys.readouterr().err
