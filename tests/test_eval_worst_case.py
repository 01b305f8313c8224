"""Per-example worst case: an example counts as robust only if no counted attack broke it."""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import nn

from edlnet.evaluation import evaluate
from edlnet.evaluation.suite import Budget
from edlnet.evaluation.suite_parser import parse_entry
from edlnet.evaluation.worst_case import counted_entries, worst_case_flags

torch.set_num_threads(1)


def test_robust_to_each_attack_separately_is_not_robust_to_all():
    clean = [True, True, True, False]
    broken_by_a = [False, True, True, False]  # A breaks example 0
    broken_by_b = [True, False, True, False]  # B breaks example 1
    # Each attack alone leaves 2 of 4 robust; together only example 2 survives.
    assert worst_case_flags(clean, [broken_by_a, broken_by_b]) == [False, False, True, False]
    # Not evaluated (None) neither breaks nor protects; clean mistakes are never robust.
    assert worst_case_flags(clean, [[None, None, True, True]]) == [True, True, True, False]


def test_budget_containment_decides_which_attacks_count():
    linf8 = Budget("Linf", Fraction(8, 255))
    entries = [
        parse_entry(e, "test")
        for e in (
            {"name": "pgd4", "attack": "pgd", "eps": "4/255"},
            {"name": "pgd8", "attack": "pgd", "eps": "8/255"},
            {"name": "pgd16", "attack": "pgd", "eps": "16/255"},
            {"name": "l2-small", "attack": "pgd", "norm": "L2", "eps": "1/255"},  # inside Linf 8/255
            {"name": "l2-big", "attack": "pgd", "norm": "L2", "eps": "0.5"},  # not inside
            {"name": "sparsefool", "attack": "sparsefool"},  # unbounded
            {"name": "noise", "corruption": "impulse_noise", "severity": 3},
        )
    ]
    assert [e.name for e in counted_entries(entries, linf8)] == ["pgd4", "pgd8", "l2-small"]
    assert Budget("L2", Fraction(1)).contains(Budget("L1", Fraction(1, 2)))
    assert not Budget("L2", Fraction(1)).contains(Budget("Linf", Fraction(1, 255)))


class Flip(nn.Module):
    """A two-class linear model on one pixel: easy to reason about."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(1, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.reshape(x.shape[0], -1) - 0.5)


def test_record_worst_case_is_per_example_and_includes_smaller_budgets():
    model = Flip().eval()
    # Pixel values 0.5 +- margin: class 0 above 0.5; FGSM at eps breaks margins below eps.
    margins = torch.tensor([0.01, 0.03, 0.05, 0.2])
    x = (0.5 + margins).view(-1, 1, 1, 1)
    y = torch.zeros(4, dtype=torch.long)
    suite = {
        "name": "t",
        "main": {"norm": "Linf", "eps": "0.04"},
        "entries": [
            {"name": "fgsm-0.02", "attack": "fgsm", "eps": "0.02"},
            {"name": "fgsm-0.04", "attack": "fgsm", "eps": "0.04"},
            {"name": "fgsm-0.1", "attack": "fgsm", "eps": "0.1"},
        ],
        "checks": {
            "gradients": False,
            "large_eps": False,
            "more_steps": False,
            "black_box": False,
            "transfer": False,
        },
    }
    record = evaluate(model, x, y, suite=suite, log=None)
    assert record["attacks"] == {"fgsm-0.02": 0.75, "fgsm-0.04": 0.5, "fgsm-0.1": 0.25}
    assert record["worst_case"] == 0.5
    assert record["worst_case_entries"] == ["fgsm-0.02", "fgsm-0.04"]
    assert record["per_example"]["worst_case"] == [False, False, True, True]
    assert record["worst_case_by_budget"]["Linf 0.1"]["accuracy"] == 0.25
    assert record["main_budget"]["eps_exact"] == "1/25"
    assert {c["name"]: c["passed"] for c in record["checks"]}["budget_monotone"] is True
