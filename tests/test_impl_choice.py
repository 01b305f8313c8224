"""The RISTA implementation of a run's training steps (edlnet.layers.impl_choice): what ``auto``
chooses, that only the steps use it (validation and checkpoints keep the layers' own), and the
fallback when compiling fails. No test here compiles: the compiled path is replaced by a
recorder (its numerics: tests/test_rista_compiled.py)."""

import json

import pytest
import torch

import edlnet
from edlnet.layers import dict_conv, impl_choice
from edlnet.layers.impl_choice import choose_impl, effective_impl, use_impl
from edlnet.layers.rista_compiled import CompiledPathUnavailable
from edlnet.layers.rista_fast import rista_fast
from edlnet.train import ConfigError, TrainConfig, load_config
from edlnet.train.loop import Trainer

CPU = torch.device("cpu")


@pytest.fixture
def native_and_compiler(monkeypatch):
    """A device with native bf16 convolutions and a compiler, whatever this machine has."""
    monkeypatch.setattr("edlnet.layers.rista_fast.native_low_precision", lambda dev, dtype: True)
    monkeypatch.setattr(impl_choice, "compiler_available", lambda dev: (True, "C++ compiler g++"))


@pytest.fixture
def compiled_calls(monkeypatch):
    """Replace the compiled path by the fast path, counting calls by autocast state."""
    calls = {"autocast": 0, "fp32": 0}

    def record(x, weight, **options):
        calls["autocast" if torch.is_autocast_enabled("cpu") else "fp32"] += 1
        return rista_fast(x, weight, **options)

    monkeypatch.setattr(dict_conv, "rista_compiled", record)
    return calls


@pytest.fixture(autouse=True)
def _no_fallback_left():
    impl_choice.reset_fallback()
    yield
    impl_choice.reset_fallback()


def test_auto_compiles_low_precision_steps_only_where_it_pays(native_and_compiler, monkeypatch):
    assert choose_impl("auto", "fp32", CPU).impl == "fast"  # fp32 keeps the float64-tested path
    assert choose_impl("auto", "bf16", CPU).impl == "compiled"
    assert choose_impl("auto", "bf16", CPU, layer_option="reference").impl == "reference"
    assert choose_impl("compiled", "fp32", CPU).impl == "compiled"  # asked for: given
    monkeypatch.setattr(impl_choice, "compiler_available", lambda dev: (False, "no C++ compiler"))
    no_compiler = choose_impl("auto", "bf16", CPU)
    assert no_compiler.impl == "fast" and "compiler" in no_compiler.reason
    monkeypatch.setattr("edlnet.layers.rista_fast.native_low_precision", lambda dev, dtype: False)
    emulated = choose_impl("auto", "bf16", CPU)
    assert emulated.impl == "fast" and "not native" in emulated.reason
    with pytest.raises(ValueError, match="layer_impl must be one of"):
        choose_impl("triton", "bf16", CPU)


def test_the_compiler_probe_answers_on_this_machine():
    ok, found = impl_choice.compiler_available("cpu")
    assert isinstance(ok, bool) and found
    assert impl_choice.compiler_available("mps") == (False, "torch.compile is not used on mps devices")


def test_use_impl_sets_default_layers_only_and_restores():
    assert effective_impl("fast") == "fast"
    with use_impl("compiled"):
        assert effective_impl("fast") == "compiled"
        assert effective_impl("reference") == "reference"  # e.g. kept for double backward
        with use_impl(None):
            assert effective_impl("fast") == "compiled"
    assert effective_impl("fast") == "fast"


def test_a_layer_inside_use_impl_runs_that_impl_without_changing_its_attribute(compiled_calls):
    layer = edlnet.DictConv2d(3, 4, 3, padding=1, mode="elastic").eval()  # eval: ‖A‖₂ as stored
    x = torch.rand(2, 3, 8, 8)
    plain = layer(x)
    with use_impl("compiled"):
        chosen = layer(x)
    assert compiled_calls["fp32"] == 1 and layer.impl == "fast"
    torch.testing.assert_close(chosen, plain, rtol=0, atol=0)  # the recorder is the fast path


def test_a_failed_compilation_falls_back_only_where_allowed(monkeypatch):
    def fail(x, weight, **options):
        raise CompiledPathUnavailable("DictConv2d(impl='compiled') could not compile (no C++ compiler)")

    monkeypatch.setattr(dict_conv, "rista_compiled", fail)
    layer = edlnet.DictConv2d(3, 4, 3, padding=1).eval()
    x = torch.rand(2, 3, 8, 8)
    with use_impl("compiled"), pytest.raises(CompiledPathUnavailable):
        layer(x)  # an explicit choice fails loudly
    with use_impl("compiled", fallback=True), pytest.warns(RuntimeWarning, match="use impl='fast'"):
        out = layer(x)
    torch.testing.assert_close(out, layer(x), rtol=0, atol=0)
    assert "no C++ compiler" in impl_choice.fallback_reason()
    with use_impl("compiled", fallback=True):
        assert effective_impl("fast") == "fast"  # later calls skip the compiler


def test_config_rejects_a_layer_impl_the_layers_would_ignore(tmp_path):
    assert TrainConfig().layer_impl == "auto"
    assert load_config(overrides=["layer_impl=compiled"]).layer_impl == "compiled"
    with pytest.raises(ConfigError, match="layer_impl="):
        load_config(overrides=["layer_impl=triton"])
    with pytest.raises(ConfigError, match="set only one of them"):
        load_config(overrides=["layer_impl=compiled", "dl_options.impl=reference"])
    assert load_config(overrides=["dl_options.impl=reference"]).layer_impl == "auto"


def _tiny(tmp_path, **kw):
    base = dict(
        model="resnet10",
        model_kwargs={"width": 4},
        dl="elastic",
        switch_to_elastic_epoch=None,
        epochs=1,
        train_subset=64,
        val_size=32,
        test_subset=32,
        batch_size=32,
        objective="pgd_at",
        attack_steps=1,
        val_attack_steps=1,
        precision="bf16",
        out_dir=str(tmp_path),
    )
    return TrainConfig(**{**base, **kw})


def test_bf16_training_steps_use_the_compiled_path_and_validation_does_not(
    tmp_path, native_and_compiler, compiled_calls
):
    run = Trainer(_tiny(tmp_path), progress=False).fit()
    # every dictionary layer of every training step (the attack and the update), under autocast
    assert compiled_calls["autocast"] > 0
    assert compiled_calls["fp32"] == 0  # validation's PGD and the test accuracy: the layers' own
    env = json.loads((run / "environment.json").read_text())
    assert env["layer_impl"]["impl"] == "compiled" and env["layer_impl"]["requested"] == "auto"
    assert json.loads((run / "train_results.json").read_text())["layer_impl"] == "compiled"
    saved = edlnet.load(run / "checkpoints" / "last")
    assert {m.impl for _, m in edlnet.dict_layers(saved)} == {"fast"}  # evaluation: the default


def test_fp32_training_keeps_the_fast_path(tmp_path, native_and_compiler, compiled_calls):
    run = Trainer(_tiny(tmp_path, precision="fp32"), progress=False).fit()
    assert compiled_calls == {"autocast": 0, "fp32": 0}
    assert json.loads((run / "environment.json").read_text())["layer_impl"]["impl"] == "fast"


def test_training_falls_back_when_the_compiler_fails(tmp_path, native_and_compiler, monkeypatch):
    def fail(x, weight, **options):
        raise CompiledPathUnavailable("DictConv2d(impl='compiled') could not compile (InvalidCxxCompiler)")

    monkeypatch.setattr(dict_conv, "rista_compiled", fail)
    with pytest.warns(RuntimeWarning, match="InvalidCxxCompiler"):
        run = Trainer(_tiny(tmp_path), progress=False).fit()
    assert json.loads((run / "train_results.json").read_text())["layer_impl"] == "fast"


def test_bf16_training_on_a_cpu_without_native_bf16_says_fp32_is_faster(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("edlnet.train.loop.native_low_precision", lambda dev, dtype: False)
    Trainer(_tiny(tmp_path, dl=None), progress=False).fit()
    err = capsys.readouterr().err
    assert "bf16 convolutions are not native on this cpu (a CPU needs AVX512-BF16 or AMX)" in err
    assert "precision=fp32 is faster here" in err
    assert "layer_impl=fast (requested auto: no dictionary layers)" in err
