"""Per-example worst case over the attacks of a suite.

An example counts as robust at a budget only if it is classified correctly on the clean image
and no attack whose threat model lies inside that budget broke it. Which entries count:
every attack entry (the suite's own and the checks' extra attacks) with a budget ``eps`` whose
ball is contained in the budget's ball: the same norm with ``eps`` no larger, or a smaller
ball of the same radius (L1 ⊂ L2 ⊂ Linf). An adversarial example at 8/255 is also one at
16/255, so the worst case at 16/255 includes the 8/255 attacks. Corruptions, unbounded
minimal-norm attacks (no ``eps``) and attacks beyond the budget (the large-eps check) never
count. The merge is per example: two attacks that each leave half the examples robust, but
different halves, leave none robust together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .suite import Budget, Entry


def counted_entries(entries: Iterable[Entry], budget: Budget) -> list[Entry]:
    """The attack entries whose threat model lies inside ``budget``."""
    return [e for e in entries if e.kind == "attack" and e.budget is not None and budget.contains(e.budget)]


def worst_case_flags(clean: Sequence[bool | None], columns: Iterable[Sequence[bool | None]]) -> list[bool]:
    """Per example: correct on the clean image and robust in every column.

    ``None`` in a column means that attack did not evaluate the example (a check limited to
    the first examples); it neither breaks nor protects it.
    """
    out = [bool(c) for c in clean]
    for column in columns:
        if len(column) != len(out):
            raise ValueError(f"a column has {len(column)} examples, expected {len(out)}")
        out = [ok and (v is None or bool(v)) for ok, v in zip(out, column)]
    return out


def budgets_of(entries: Iterable[Entry]) -> list[Budget]:
    """Distinct budgets of attack entries, by norm then radius."""
    found = {e.budget for e in entries if e.budget is not None}
    return sorted(found, key=lambda b: (b.norm, b.eps))
