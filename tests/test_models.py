"""Every registered model: forward/backward, batch independence, save/load; convert round trip."""

import json

import pytest
import torch
from helpers import builds_own_dictionaries, dl_kwargs, input_size, tiny_kwargs
from torch import nn

import edlnet
from edlnet.checkpoint import CheckpointError

MODELS = edlnet.list_models()


def build(name, **kw):
    return edlnet.create_model(name, **tiny_kwargs(name), **dl_kwargs(name, **kw))


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_finite(name):
    model = build(name, dl="elastic", n_steps=2)
    x = torch.rand(3, *input_size(name))
    out = model(x)
    assert out.shape[0] == 3 and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", MODELS)
def test_eval_outputs_independent_of_batch(name):
    # float64: float32 convolution kernels round differently for different batch sizes, and
    # deep unrolled layers amplify that; in float64 any real cross-example coupling would show.
    model = build(name, dl="elastic").double()
    x = torch.rand(6, *input_size(name), dtype=torch.float64)
    model.train()
    model(x)  # populate BN statistics and dictionary norms
    model.eval()
    with torch.no_grad():
        full = model(x)
        parts = torch.cat([model(x[i : i + 1]) for i in range(6)])
        shuffled = model(x.flip(0)).flip(0)
    assert torch.allclose(full, parts, atol=1e-10, rtol=1e-9)
    assert torch.allclose(full, shuffled, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, tmp_path):
    model = build(name, dl="vanilla", lam=0.05)
    x = torch.rand(2, *input_size(name))
    model.train()
    model(x)
    edlnet.set_mode(model, "elastic", beta=0.3) if edlnet.dict_layers(model) else None
    model.eval()
    edlnet.save(model, tmp_path / "ck")
    loaded = edlnet.load(tmp_path / "ck")
    assert type(loaded) is type(model)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    for (_, a), (_, b) in zip(edlnet.dict_layers(model), edlnet.dict_layers(loaded)):
        assert a.config() == b.config()


@pytest.mark.parametrize("name", MODELS)
def test_plain_model_converts_and_back_exactly(name):
    # The registered input size is the one the model is built for: the plain network maps it
    # to one logit per class; converting its convolutions and back restores every weight.
    model = build(name)
    x = torch.rand(2, *input_size(name))
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 10)
    if builds_own_dictionaries(name):
        with pytest.raises(ValueError, match="builds its own pursuit layers"):
            edlnet.create_model(name, dl="vanilla", **tiny_kwargs(name))
        return
    before = {k: v.clone() for k, v in model.state_dict().items()}
    edlnet.convert(model, mode="vanilla", n_steps=1)
    assert edlnet.dict_layers(model)
    edlnet.convert(model, mode=None)
    after = model.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)


def test_dl_layers_replaces_first_n_in_order():
    plain = edlnet.create_model("resnet18", width=4)
    convs = [n for n, m in plain.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20  # 17 convolutions + 3 projection shortcuts
    for n in (0, 1, 5, 14, 20):
        model = edlnet.create_model("resnet18", width=4, dl="elastic", dl_layers=n)
        names = [k for k, _ in edlnet.dict_layers(model)]
        assert names == convs[:n]


def test_dl_options_reach_every_layer():
    model = edlnet.create_model("resnet10", width=4, dl="robust", n_steps=3, lam=0.2, eps=0.05, nonneg=True)
    layers = edlnet.dict_layers(model)
    assert layers and all(
        m.config()["n_steps"] == 3 and m.lam == 0.2 and m.eps == 0.05 and m.nonneg and m.mode == "robust"
        for _, m in layers
    )


def test_convert_and_back_restores_weights_exactly():
    class UserCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(8, 8, 3, stride=2, padding="valid", bias=False),
                nn.ReLU(),
                nn.Conv2d(8, 4, 5, padding="same"),
            )
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.body(x).mean((2, 3)))

    model = UserCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 9, 9)
    ref = model(x)
    edlnet.convert(model, mode="elastic", n_steps=0)
    assert len(edlnet.dict_layers(model)) == 3
    assert torch.allclose(model(x), ref, atol=1e-6)  # zero steps: the same network
    edlnet.convert(model, mode="vanilla", n_steps=2)
    assert all(m.mode == "vanilla" and m.n_steps == 2 for _, m in edlnet.dict_layers(model))
    model(x)
    edlnet.convert(model, mode=None)
    assert not edlnet.dict_layers(model)
    after = model.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)


def test_set_mode_keeps_weights_and_enables_beta():
    model = edlnet.create_model("resnet10", width=4, dl="vanilla")
    before = {k: v.clone() for k, v in model.state_dict().items() if "beta" not in k}
    assert not any(p.requires_grad for n, p in model.named_parameters() if "beta" in n)
    edlnet.set_mode(model, "elastic")
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert all(p.requires_grad for n, p in model.named_parameters() if "beta" in n)
    with pytest.raises(ValueError, match="no DictConv2d"):
        edlnet.set_mode(edlnet.create_model("resnet10", width=4), "elastic")


def test_create_model_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet19'"):
        edlnet.create_model("resnet19")
    with pytest.raises(ValueError, match="dl=None"):
        edlnet.create_model("resnet10", lam=0.1)
    with pytest.raises(ValueError, match="bad arguments"):
        edlnet.create_model("resnet10", depth=3)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        edlnet.load(tmp_path / "nothing")
    model = edlnet.create_model("resnet10", width=4, dl="elastic")
    path = edlnet.save(model, tmp_path / "ck")
    (path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt weights file .*model.safetensors"):
        edlnet.load(path)
    edlnet.save(model, path)
    meta = json.loads((path / "model.json").read_text())
    meta["model"]["width"] = 8
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit model resnet10: .*shape mismatch"):
        edlnet.load(path)
    (path / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt checkpoint metadata"):
        edlnet.load(path)


def test_capture_layers_records_inputs_and_outputs():
    model = edlnet.create_model("resnet10", width=4, dl="elastic")
    with edlnet.capture_layers(model) as rec:
        model(torch.rand(2, 3, 32, 32))
    assert list(rec) == [n for n, _ in edlnet.dict_layers(model)]
    first = rec["stem.0"]
    assert first["input"].shape == (2, 3, 32, 32) and first["output"].shape == (2, 4, 32, 32)


def test_forward_features_and_head():
    model = edlnet.create_model("resnet18", width=4)
    x = torch.rand(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, 32, 4, 4)
    assert torch.allclose(model.forward_head(feats), model(x))
    assert model.forward_head(feats, pre_logits=True).shape == (2, 32)
