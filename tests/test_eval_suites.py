"""Suite files parse, reference existing attacks with valid settings, and keep budgets exact."""

from __future__ import annotations

from fractions import Fraction

import pytest
import yaml

from edlnet.attacks import ATTACKS
from edlnet.evaluation import CORRUPTIONS, SuiteError, list_suites, load_suite
from edlnet.evaluation.check_plan import check_entries
from edlnet.evaluation.suite import eps_text
from edlnet.evaluation.suite_parser import SUITE_DIR

EXPECTED = {"quick", "table4", "table5", "table6", "table11", "table1_2"}


def test_every_paper_table_has_a_suite():
    assert set(list_suites()) >= EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_suite_file_parses_and_references_existing_attacks(name):
    suite = load_suite(name)
    assert suite.name == name and suite.main is not None and suite.description
    raw = yaml.safe_load((SUITE_DIR / f"{name}.yaml").read_text())
    for entry, spec in zip(suite.entries, raw["entries"]):
        if entry.kind == "attack":
            assert entry.attack in ATTACKS
            if "eps" in spec:  # budgets are written as exact strings and kept exact
                assert isinstance(spec["eps"], str)
                assert isinstance(entry.eps, Fraction)
                assert entry.eps == Fraction(spec["eps"])
            if ATTACKS.get(entry.attack).follows_model_gradients and "w_grad" not in spec:
                assert entry.w_grad == "both"  # the default for gradient attacks
        else:
            assert entry.kind == "corruption" and entry.corruption in CORRUPTIONS
    names = {e.name for e in check_entries(suite, has_surrogate=True)}
    assert {"check/gradients", "check/large-eps", "check/transfer"} <= names
    assert suite.checks["more_steps"]["enabled"] and suite.checks["more_steps"]["base"]


def test_paper_budgets():
    def budgets(name, attack):
        return [e.budget.label for e in load_suite(name).entries if e.attack == attack]

    table4 = load_suite("table4")
    assert {e.name: (e.attack, e.settings.get("loss", "ce")) for e in table4.entries[:4]} == {
        "PGD-20": ("pgd", "ce"),
        "FGSM": ("fgsm", "ce"),
        "C&W": ("pgd", "margin"),
        "AA": ("autoattack", "ce"),
    }
    # The attacks adapted to RISTA layers follow, cascaded, in every table suite.
    for name in ("table4", "table5", "table6", "table11", "table1_2"):
        adapted = [e for e in load_suite(name).entries if e.attack in ("surrogate-pgd", "residual-pgd")]
        assert len(adapted) == 4 and all(e.cascade for e in adapted)
        assert {e.settings.get("twin") for e in adapted} == {"conv", "smooth", "vanilla", None}
    assert budgets("table5", "autoattack") == ["Linf 8/255", "Linf 16/255", "Linf 32/255"]
    assert budgets("table6", "pgd") == ["L2 0.5", "L2 1", "L2 2"]
    assert budgets("table1_2", "pgd") == [
        "Linf 1/255",
        "Linf 2/255",
        "Linf 3/255",
        "Linf 4/255",
        "Linf 8/255",
        "L2 0.1",
        "L2 0.2",
        "L2 0.3",
        "L2 0.4",
        "L2 0.6",
    ]
    levels = [e.severity for e in load_suite("table1_2").entries if e.kind == "corruption"]
    assert levels == [1, 2, 3, 4, 5]
    sparsefool = [e.settings["lambda_"] for e in load_suite("table11").entries if e.attack == "sparsefool"]
    assert sparsefool == [3, 5, 7, 9, 12, 15, 20]
    assert eps_text(Fraction(1, 2)) == "0.5" and eps_text(Fraction(8, 255)) == "8/255"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"attack": "pgdd", "eps": "8/255"}, "unknown attack 'pgdd'"),
        ({"attack": "pgd", "eps": "8/255", "settings": {"stepz": 3}}, "no setting"),
        ({"attack": "pgd", "eps": "8/255", "settings": {"steps": 0}}, "steps >= 1"),
        ({"attack": "pgd", "norm": "L7", "eps": "1"}, "supports norms"),
        ({"attack": "fgsm", "eps": "eight"}, "cannot read eps"),
        ({"attack": "pgd"}, "needs a budget"),
        ({"attack": "sparsefool", "norm": "Linf"}, "L1 only"),
        ({"attack": "pgd", "eps": "8/255", "w_grad": "sometimes"}, "w_grad must be one of"),
        ({"corruption": "fog", "severity": 1}, "unknown corruption"),
        ({"corruption": "impulse_noise", "severity": 6}, "severity: 1..5"),
        ({"attack": "pgd", "corruption": "impulse_noise"}, "exactly one of"),
        ({"attack": "pgd", "eps": "8/255", "budget": 1}, "unknown keys"),
    ],
)
def test_bad_entries_are_reported_with_the_fix(entry, message):
    with pytest.raises(SuiteError, match=message):
        load_suite({"name": "bad", "main": {"eps": "8/255"}, "entries": [entry]})


def test_bad_suites_are_reported_with_the_fix(tmp_path):
    with pytest.raises(SuiteError, match="unknown suite 'nope'.*quick"):
        load_suite("nope")
    with pytest.raises(SuiteError, match="unique"):
        load_suite({"name": "d", "entries": [{"name": "a", "attack": "fgsm", "eps": "1/255"}] * 2})
    with pytest.raises(SuiteError, match="unknown checks"):
        load_suite({"name": "c", "entries": [{"attack": "fgsm", "eps": "1/255"}], "checks": {"vibes": {}}})
    with pytest.raises(SuiteError, match="must name a PGD entry"):
        load_suite(
            {
                "name": "c",
                "main": {"eps": "1/255"},
                "entries": [{"name": "f", "attack": "fgsm", "eps": "1/255"}],
                "checks": {"more_steps": {"base": "f"}},
            }
        )
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nentries:\n  - {attack: fgsm, eps: 2/255}\n")
    suite = load_suite(path)
    assert suite.entries[0].name == "FGSM Linf 2/255"
    assert not suite.checks["more_steps"]["enabled"]  # no main budget: said, not crashed


def test_quick_suite_leaves_black_box_to_the_check():
    quick = load_suite("quick")
    assert not any(e.attack == "square" for e in quick.entries)  # no weak Square-100 entry
    assert quick.checks["black_box"]["n_queries"] >= 1000
    checks = {e.name: e for e in check_entries(quick, has_surrogate=True)}
    # The checks' comparison attacks run cascaded, after the suite's own; the probe does not.
    assert all(checks[n].cascade for n in ("check/more-steps", "check/transfer", "check/square"))
    assert not checks["check/large-eps"].cascade and checks["check/square"].role == "check"
    assert "check/eot-pgd" not in checks  # only for a randomized model
    assert "check/eot-pgd" in {e.name for e in check_entries(quick, randomized=True)}


def test_black_box_square_needs_1000_queries():
    entries = [{"name": "PGD", "attack": "pgd", "eps": "8/255"}]
    with pytest.raises(SuiteError, match="n_queries must be >= 1000"):
        load_suite(
            {
                "name": "s",
                "main": {"eps": "8/255"},
                "entries": entries,
                "checks": {"black_box": {"n_queries": 100}},
            }
        )

    def square_check(aa_settings):
        suite = load_suite(
            {
                "name": "s",
                "main": {"eps": "8/255"},
                "entries": entries
                + [{"name": "AA", "attack": "autoattack", "eps": "8/255", "settings": aa_settings}],
            }
        )
        return "check/square" in {e.name for e in check_entries(suite)}

    # AutoAttack standard (both policies) at the main budget runs a full Square itself ...
    assert not square_check({"version": "standard"})
    assert not square_check({"version": "standard", "n_queries": 1000})
    # ... but not when its Square is cut short: then the check's own Square runs.
    assert square_check({"version": "standard", "n_queries": 100})
    assert square_check({"attacks": ["apgd-ce"]})  # no Square part at all
