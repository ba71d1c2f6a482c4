"""Rubric aggregation: item verdicts -> one score in [0, 1].

* ``explicit``: Σ w·c / Σ w over every item (c = 1 when satisfied; undecided counts as 0).
* ``implicit``: one judge call over all items returns 1-10, mapped linearly to [0, 1].
* ``all``: 1 when every essential item is satisfied, else 0 (other items are reported but do
  not move the score; a rubric without essential items requires every item).
"""

from __future__ import annotations

from collections.abc import Iterable

from toolzoo.core import ItemScore


def _unit(x: float) -> float:
    # Σ of a subset of positive floats can round a hair above Σ of them all.
    return min(1.0, max(0.0, x))


def explicit(items: Iterable[ItemScore]) -> float:
    items = list(items)
    total = sum(i.weight for i in items)
    if total <= 0:
        return 0.0
    return _unit(sum(i.weight * (1.0 if i.passed else 0.0) for i in items) / total)


def all_essential(items: Iterable[ItemScore], essential: set[str]) -> float:
    items = list(items)
    gate = [i for i in items if i.id in essential] or items
    return 1.0 if gate and all(i.passed for i in gate) else 0.0


def implicit(score: float) -> float:
    """A judge's 1-10 score -> [0, 1] (1 -> 0.0, 10 -> 1.0); out-of-range scores are clamped."""
    return _unit((min(10.0, max(1.0, float(score))) - 1.0) / 9.0)


def aggregate(aggregation: str, items: list[ItemScore], essential: set[str],
              implicit_score: float | None = None) -> float:
    if aggregation == "explicit":
        return explicit(items)
    if aggregation == "all":
        return all_essential(items, essential)
    if aggregation == "implicit":
        if implicit_score is None:
            raise ValueError("implicit aggregation needs the judge's 1-10 score")
        return implicit(implicit_score)
    raise ValueError(f"unknown aggregation {aggregation!r}")
