"""Toy models whose truth is known, one per gradient-masking pattern: the suite must flag each
(the check made for it has status "failed") or its worst case must come out within noise of
the truth; honest models (plain and dictionary) must not be flagged.

Everything is tiny (1x8x8 or 3x8x8 inputs, 16 examples) and every masked model is identical in
value to an unmasked one whose robustness the test can measure directly.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edlnet.attacks import PGD
from edlnet.data import load_dataset
from edlnet.evaluation import evaluate
from edlnet.layers import DictConv2d

torch.set_num_threads(1)
pytest.importorskip("pyautoattack")  # Square and AutoAttack run the reference implementation

EPS = "8/255"
N = 16


def suite(name: str, entries: list[dict], eps: str = EPS, **checks) -> dict:
    """A small suite at Linf ``eps`` with cheap check settings (Square keeps its 1,000 queries)."""
    options = {
        "large_eps": {"steps": 5},
        "more_steps": {"steps": 20},
        "black_box": {"n_queries": 1000, "limit": N},
        "transfer": {"steps": 10},
        "gradients": {"n_probe": N},
    }
    options.update(checks)
    return {"name": name, "main": {"norm": "Linf", "eps": eps}, "entries": entries, "checks": options}


def fgsm(eps: str = EPS) -> dict:
    return {"name": "FGSM", "attack": "fgsm", "eps": eps}


def pgd(
    steps: int = 10, eps: str = EPS, name: str | None = None, w_grad: str | None = None, **settings
) -> dict:
    entry = {
        "name": name or f"PGD-{steps}",
        "attack": "pgd",
        "eps": eps,
        "settings": {"steps": steps, **settings},
    }
    return entry if w_grad is None else {**entry, "w_grad": w_grad}


STANDARD = suite("standard", [fgsm(), pgd(10)])


def run(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: dict, **kw) -> dict:
    kw.setdefault("log", None)
    return evaluate(model, x, y, suite=spec, batch_size=N, **kw)


def check(record: dict, name: str) -> dict:
    return next(c for c in record["checks"] if c["name"] == name)


def statuses(record: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in record["checks"]}


def failed(record: dict) -> list[str]:
    return [c["name"] for c in record["checks"] if c["status"] == "failed"]


# -- toy models -------------------------------------------------------------------------------


def linear(shape: tuple[int, ...] = (3, 8, 8), seed: int = 0, classes: int = 10) -> nn.Linear:
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(math.prod(shape), classes)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 0.2)
        lin.bias.zero_()
    return lin


def with_front(front: nn.Module | None, lin: nn.Linear) -> nn.Sequential:
    layers = ([front] if front is not None else []) + [nn.Flatten(), lin]
    return nn.Sequential(*layers).eval()


def own_labels(model: nn.Module, n: int = N, shape: tuple[int, ...] = (3, 8, 8)):
    """Random images labelled by the model itself: every example is clean-correct."""
    x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return x, y


def truth(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: str = EPS) -> float:
    """Robust accuracy of an unmasked model, measured by a strong PGD (restarts, many steps)."""
    return PGD(model, eps=eps, steps=50, restarts=3).run(x, y).accuracy


class ZeroGradient(nn.Module):
    """Identity in value, zero input gradient (a non-differentiable front)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach() + 0 * x


class _Shatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return torch.randn_like(grad)  # finite, non-zero, unrelated to the function


class ShatteredGradient(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Shatter.apply(x)


class Ripple(nn.Module):
    """Linear classifier plus a deterministic high-frequency ripple (1/ω)·Σᵢ vᵢ sin(ω xᵢ + φᵢ).
    The ripple moves the logits little but its gradient v·cos(ω x + φ), 16x larger than the
    weights, is what gradient attacks follow; the gradient is TRUE (finite differences agree)
    but useless a few steps away, and only a search over the outputs finds the linear part."""

    def __init__(self, scale: float = 16.0, omega: float = 1e3, seed: int = 0) -> None:
        super().__init__()
        self.lin = linear(seed=seed)
        g = torch.Generator().manual_seed(seed + 1)
        self.register_buffer("v", scale * 0.2 * torch.randn(self.lin.weight.shape, generator=g))
        self.register_buffer("phase", 2 * math.pi * torch.rand(self.lin.in_features, generator=g))
        self.omega = omega

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        return self.lin(f) + torch.sin(self.omega * f + self.phase) @ self.v.T / self.omega


class RandomPhaseLinear(nn.Module):
    """Two-class linear model plus a random-phase ripple drawn afresh in every forward, in
    eval mode too (the EOT toy of test_attacks_rista on 1x8x8 inputs): predictions barely
    move, but every single-sample input gradient is dominated by zero-mean noise."""

    def __init__(self, dim: int = 64, scale: float = 16.0, omega: float = 1e3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
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


# -- 1-6: masking patterns --------------------------------------------------------------------


def test_zero_gradients_are_flagged_and_square_recovers_the_truth():
    lin = linear()
    model = with_front(ZeroGradient(), lin)
    x, y = own_labels(model)
    record = run(model, x, y, STANDARD)
    s = statuses(record)
    assert s["input_gradients"] == "failed" and s["large_eps"] == "failed", s
    probe = check(record, "input_gradients")["probe"]["model"]
    assert probe["bad"] == probe["points"] == 3 * N  # zero at clean, random and PGD points
    assert s["black_box"] == "failed" and check(record, "black_box")["only_broken_by_it"] > 0
    assert record["checks_passed"] is False
    # Same function as the plain linear model: its robustness is the truth. The gradient
    # attacks are fooled, the worst case (with the check's cascaded Square) is not.
    true = truth(with_front(None, lin), x, y)  # measured: 0.3125
    assert record["attacks"]["PGD-10"] >= true + 0.5
    assert record["worst_case"] <= true + 1 / N


def test_shattered_gradients_fail_gradient_agreement():
    model = with_front(ShatteredGradient(), linear())
    x, y = own_labels(model)
    record = run(model, x, y, STANDARD)
    agreement = check(record, "gradient_agreement")
    assert agreement["status"] == "failed" and agreement["fraction"] < 0.5, agreement["detail"]
    # Finite and non-zero: only finite differences can tell this gradient is wrong.
    assert check(record, "input_gradients")["status"] == "passed"
    assert record["checks_passed"] is False


def test_a_randomized_defense_gets_eot_in_its_worst_case():
    model = RandomPhaseLinear().eval()
    x = 0.25 + 0.5 * torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        y = model.lin(x.flatten(1)).argmax(dim=1)
    spec = suite(
        "random", [fgsm("1/10"), pgd(10, "1/10")], eps="1/10", deterministic={"eot_samples": 16, "steps": 10}
    )
    record = run(model, x, y, spec)
    assert record["randomized"] is True
    det = check(record, "deterministic")
    assert det["status"] == "passed" and "randomized" in det["detail"], det["detail"]
    eot = record["entries"]["check/eot-pgd"]
    # one run under the true gradient (no per-policy wrapper: it would re-judge on one pass)
    assert eot["n_evaluated"] == N and eot["attack_settings"]["eot_samples"] == 16
    assert "check/eot-pgd" in record["worst_case_entries"]
    # measured: PGD-10 0.75, EOT-PGD 0.0, worst case 0.0
    assert record["worst_case"] <= eot["accuracy"]
    assert record["worst_case"] + 0.25 <= record["attacks"]["PGD-10"]


def test_a_non_converged_attack_fails_more_steps():
    lin = linear()
    model = with_front(None, lin)
    x, y = own_labels(model)
    # The suite's only gradient attack: one tiny step from the clean image.
    weak = pgd(1, alpha="1/1020", random_start=False)
    record = run(model, x, y, suite("weak", [weak], more_steps={"steps": 40}))
    more = check(record, "more_steps")
    assert more["status"] == "failed", more["detail"]
    assert more["only_broken_by_it"] >= N // 2  # measured: 10 of 16
    true = truth(model, x, y)
    assert record["attacks"]["PGD-1"] >= true + 0.5
    # The checks' own attacks run and count: the worst case is the truth again.
    assert record["worst_case"] <= true + 1 / N


def test_true_but_useless_gradients_only_black_box_sees():
    model = Ripple().eval()
    x, y = own_labels(model)
    record = run(model, x, y, STANDARD)
    s = statuses(record)
    # Every gradient is finite, non-vanishing and agrees with finite differences ...
    assert s["input_gradients"] == "passed" and s["gradient_agreement"] == "passed", s
    # ... yet a gradient-free search breaks what every gradient attack left robust.
    black = check(record, "black_box")
    assert black["status"] == "failed" and black["only_broken_by_it"] >= 2, black["detail"]
    gradient_best = min(record["attacks"].values())
    assert record["worst_case"] < gradient_best  # measured: 0.31 vs 0.62


def masked_dictionary(seed: int = 0) -> nn.Sequential:
    """The paper's literal Robust DL layer: no dictionary normalization, a fixed step η=0.1
    and ε=1e-8 in w = 1/(2(|r| + ε)), exact gradients through w."""
    torch.manual_seed(seed)
    layer = DictConv2d(3, 8, 3, padding=1, mode="robust", normalize=False, step=0.1, eps=1e-8, n_steps=2)
    return nn.Sequential(layer, nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()


def sample_8x8(split: str = "test", n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _sample_8x8(split)
    return x[:n], y[:n]


@functools.cache
def _sample_8x8(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled CIFAR-10 sample, 4x4 average-pooled to 3x8x8."""
    data = load_dataset("cifar10-sample")
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    return F.avg_pool2d(x[:512].float() / 255, 4), y[:512].clone()


def test_vanishing_gradients_of_a_real_dictionary_layer():
    # Where the clean image is exactly black over a 5x5 window (here its left half), the
    # layer's residual r = x - A*(z) is exactly 0, and the exact derivative of the weighted
    # residual, 2εw² = 1/(2ε) at r = 0, is 5e7: the clean-image gradient is huge (measured
    # ~7e4). One step away r is no longer 0, that derivative falls to ε/(2r²) ~ 0, and the
    # input gradient (~0.1) is ~1e-6 of the clean one: vanishing, at the random points of
    # the ball and at PGD iterates, and in the attack steps of PGD started at the clean image.
    model = masked_dictionary()
    x, _ = sample_8x8()
    x = x.clone()
    x[..., :4] = 0
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    record = run(model, x, y, STANDARD)
    grads = check(record, "input_gradients")
    assert grads["status"] == "failed" and grads["true_policy"] == "exact", grads["detail"]
    assert grads["probe"]["exact"]["vanishing"] >= N  # measured: 32 of 48 (random, PGD points)
    assert grads["probe"]["exact"]["bad"] == 0  # never zero or non-finite: only vanishing
    assert grads["steps"]["exact"]["vanishing"] > 0  # the large-eps PGD starts at the clean image
    # The same layer on natural images (no exactly-zero residual): nothing vanishes, the check
    # passes, so it is the vanishing that failed it above (measured: ratio >= 0.9 everywhere).
    natural, _ = sample_8x8()
    with torch.no_grad():
        y = model(natural).argmax(dim=1)
    honest = check(run(model, natural, y, STANDARD), "input_gradients")
    assert honest["status"] == "passed", honest["detail"]
    assert honest["probe"]["exact"]["vanishing"] == honest["steps"]["exact"]["vanishing"] == 0


# -- 7-9: honest models -----------------------------------------------------------------------


def train(model: nn.Module, seed: int, steps: int = 30) -> nn.Module:
    """A few SGD steps on the 8x8 sample (train mode: BatchNorm and dictionary norms update)."""
    x, y = sample_8x8("train", 512)
    torch.manual_seed(seed)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(steps):
        batch = slice((step * 64) % 512, (step * 64) % 512 + 64)
        loss = F.cross_entropy(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def small_cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    return train(model, seed)


def small_edlnet(seed: int) -> nn.Module:
    """One Elastic DictConv2d (default RISTA settings), BatchNorm, ReLU and a linear head."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        DictConv2d(3, 8, 3, padding=1, mode="elastic"),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    )
    return train(model, seed)


# CE and margin-loss PGD: on the EDLNet, CE-only PGD misses an example Square breaks (measured
# at seed 0; margin-loss PGD breaks it), which the black-box check rightly flags.
HONEST = suite(
    "honest",
    [fgsm(), pgd(10, restarts=2), pgd(10, name="PGD-10 margin", restarts=2, loss="margin")],
    large_eps={"steps": 10},
    more_steps={"steps": 40},
)


def test_an_honest_cnn_with_a_surrogate_passes_every_check():
    x, y = sample_8x8()
    record = run(small_cnn(seed=0), x, y, HONEST, surrogate=small_cnn(seed=100))
    assert record["clean"] >= 0.2  # measured 0.25 (4 of 16): the checks have examples to attack
    assert record["worst_case"] > 0  # and some survive, so the cascaded checks attack something
    assert failed(record) == [], record["checks_summary"]["line"]
    assert record["checks_passed"] is True, record["checks_summary"]["line"]
    assert statuses(record)["transfer"] == "passed" and "check/transfer" in record["entries"]
    assert record["randomized"] is False and "check/eot-pgd" not in record["entries"]


def test_a_trained_edlnet_is_not_flagged():
    x, y = sample_8x8()
    record = run(small_edlnet(seed=0), x, y, HONEST, surrogate=small_cnn(seed=100))
    assert record["model"]["dictionary_layers"] is True
    assert record["clean"] >= 0.2  # measured 0.375
    assert failed(record) == [], record["checks_summary"]["line"]
    assert record["checks_passed"] is True, record["checks_summary"]["line"]
    # Judged on the true gradient (exact through the reweighting); both policies were probed.
    grads = check(record, "input_gradients")
    assert grads["true_policy"] == "exact" and set(grads["probe"]) == {"exact", "detached"}
    assert check(record, "gradient_agreement")["fraction"] == 1.0


ADAPTED = suite(
    "adapted",
    [
        fgsm(),
        pgd(10, name="PGD-10 exact", w_grad="exact"),
        {
            "name": "BPDA conv",
            "attack": "surrogate-pgd",
            "eps": EPS,
            "settings": {"steps": 10, "twin": "conv"},
        },
        {
            "name": "BPDA smooth",
            "attack": "surrogate-pgd",
            "eps": EPS,
            "settings": {"steps": 10, "twin": "smooth"},
        },
        {"name": "Residual", "attack": "residual-pgd", "eps": EPS, "settings": {"steps": 10}},
        {
            "name": "AutoAttack",
            "attack": "autoattack",
            "eps": EPS,
            "w_grad": "both",
            "settings": {"version": "standard", "n_iter": 10, "n_queries": 100},
        },
    ],
    more_steps={"base": "PGD-10 exact", "steps": 40},
)


def test_adapted_attacks_and_the_autoattack_split_on_a_trained_edlnet():
    x, y = sample_8x8()
    record = run(small_edlnet(seed=0), x, y, ADAPTED)
    clean = record["per_example"]["clean"]
    worst = record["per_example"]["worst_case"]
    exact = record["per_example"]["PGD-10 exact"]
    assert sum(clean) >= 4
    # Per example: what exact-gradient PGD breaks stays broken in the worst case.
    assert all(not w for w, e in zip(worst, exact) if not e)
    assert record["worst_case"] <= min(record["attacks"].values())
    # The adapted attacks ran on every clean-correct example, under both policies, with their
    # own machinery (a conv twin of the one dictionary layer, a loss on its residual).
    for name in ("BPDA conv", "BPDA smooth", "Residual"):
        entry = record["entries"][name]
        column = record["per_example"][name]
        assert entry["n_evaluated"] == N and 0.0 <= entry["accuracy"] <= record["clean"], name
        assert all(isinstance(v, bool) for v in column) and not any(
            v and not c for v, c in zip(column, clean)
        ), name
        assert set(entry["accuracy_by_policy"]) == {"exact", "detached"}, name
        assert entry["grad_stats"]["exact"]["nonfinite"] == 0, name
    conv = record["entries"]["BPDA conv"]["attack_settings"]["attack"]
    assert conv["twin"] == "conv" and conv["twinned_layers"] == 1
    assert record["entries"]["Residual"]["attack_settings"]["attack"]["layer_names"] == ["0"]
    # AutoAttack standard under the true gradient, split from the worst case over both
    # policies: never below the worst case, which also holds every other attack.
    aa = record["autoattack_standard"]["AutoAttack"]
    assert aa["policy"] == "exact" and aa["n_examples"] == N
    assert aa["accuracy"] >= record["worst_case"]
    assert aa["accuracy"] >= record["attacks"]["AutoAttack"]
    split = record["entries"]["AutoAttack"]["attack_settings"]
    assert split["policies"] == ["exact", "detached"] and split["square"]["n_queries"] == 100
    # Its 100-query Square is too weak to stand for the black-box check: the check's own
    # Square (>= 1,000 queries) runs beside it.
    assert record["entries"]["check/square"]["attack_settings"]["n_queries"] >= 1000
    assert failed(record) == [], record["checks_summary"]["line"]


def test_an_attack_with_nothing_to_attack_is_recorded_as_not_evaluated():
    # ResidualPGD needs reweighting layers; on a plain model it evaluates no example, so it
    # neither breaks nor protects any and the rest of the evaluation is unchanged.
    model = with_front(None, linear())
    x, y = own_labels(model)
    spec = suite(
        "na",
        [
            fgsm(),
            pgd(10),
            {"name": "Residual", "attack": "residual-pgd", "eps": EPS, "settings": {"steps": 10}},
        ],
    )
    record = run(model, x, y, spec)
    entry = record["entries"]["Residual"]
    assert entry["n_evaluated"] == 0 and entry["accuracy"] is None
    assert "robust or elastic" in entry["attack_settings"]["not_applicable"]
    assert record["per_example"]["Residual"] == [None] * N
    assert record["attacks"]["Residual"] is None
    base = run(model, x, y, suite("base", [fgsm(), pgd(10)]))
    assert record["worst_case"] == base["worst_case"]
    assert record["per_example"]["worst_case"] == base["per_example"]["worst_case"]


# -- 10: the top-level API in a fresh interpreter ---------------------------------------------


def test_edlnet_evaluate_works_in_a_fresh_interpreter():
    code = """
import sys
import edlnet
assert "edlnet.evaluation" not in sys.modules  # loaded on first use of edlnet.evaluate
import torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3)).eval()
x = torch.rand(4, 3, 4, 4)
y = model(x).argmax(dim=1)
spec = {"name": "tiny", "main": {"norm": "Linf", "eps": "8/255"},
        "entries": [{"name": "PGD-2", "attack": "pgd", "eps": "8/255", "settings": {"steps": 2}}],
        "checks": {"black_box": False, "large_eps": {"steps": 2}, "more_steps": {"steps": 2}}}
record = edlnet.evaluate(model, x, y, suite=spec, log=None)
assert record["clean"] == 1.0 and "PGD-2" in record["attacks"], record["attacks"]
assert callable(edlnet.evaluate) and callable(edlnet.benchmark)
import edlnet.evaluation
assert callable(edlnet.evaluate) and edlnet.evaluate is edlnet.evaluation.evaluate
assert edlnet.benchmark is edlnet.evaluation.benchmark
try:
    import edlnet.evaluate  # the old package name is gone ...
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("edlnet.evaluate is importable as a module")
assert callable(edlnet.evaluate)  # ... and trying it leaves the function in place
print("ok")
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDLNET_TEST_THREADS": "1"}
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=root, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
