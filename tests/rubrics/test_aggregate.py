"""Aggregation closed forms and bounds; reward combination."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.core import ItemScore
from toolzoo.rubrics.aggregate import aggregate, all_essential, explicit, implicit
from toolzoo.rubrics.combine import combine
from toolzoo.rubrics.spec import MAX_WEIGHT, MIN_WEIGHT, WEIGHTS, RubricItem


def item(id_: str, weight, passed: bool | None) -> ItemScore:
    w = RubricItem(id=id_, criterion="c", weight=weight).weight_value
    return ItemScore(id=id_, passed=passed, value=float(bool(passed)), weight=w)


def test_closed_form_essential_optional_pass_important_missed_pitfall_avoided():
    items = [item("e", "essential", True), item("i", "important", False), item("o", "optional", True),
             item("p", "pitfall", True)]
    value = aggregate("explicit", items, {"e"})
    assert value == pytest.approx((1.0 + 0.3 + 0.9) / 2.9)
    assert round(value, 4) == 0.7586


def test_named_weights():
    assert WEIGHTS == {"essential": 1.0, "important": 0.7, "optional": 0.3, "pitfall": 0.9}
    assert RubricItem(id="x", criterion="c", weight=2).weight_value == 2.0


def test_all_needs_every_essential():
    items = [item("e1", "essential", True), item("e2", "essential", True), item("o", "optional", False)]
    assert aggregate("all", items, {"e1", "e2"}) == 1.0
    items[1] = item("e2", "essential", False)
    assert aggregate("all", items, {"e1", "e2"}) == 0.0
    # without essential items every item is required
    assert all_essential([item("a", "optional", True), item("b", 1.0, False)], set()) == 0.0


def test_implicit_maps_1_to_10_onto_unit_interval():
    assert implicit(1) == 0.0 and implicit(10) == 1.0
    assert implicit(5.5) == pytest.approx(0.5)
    assert implicit(0) == 0.0 and implicit(42) == 1.0
    with pytest.raises(ValueError):
        aggregate("implicit", [], set())


def test_undecided_counts_as_missed():
    assert explicit([item("a", "essential", None), item("b", "essential", True)]) == pytest.approx(0.5)


weights = st.one_of(st.sampled_from(list(WEIGHTS)), st.floats(MIN_WEIGHT, MAX_WEIGHT))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(weights, st.one_of(st.none(), st.booleans())), min_size=0, max_size=25),
       st.floats(-100, 100, allow_nan=False))
def test_aggregation_stays_in_unit_interval(rows, score):
    items = [item(f"i{k}", w, p) for k, (w, p) in enumerate(rows)]
    essential = {f"i{k}" for k, (w, _) in enumerate(rows) if w == "essential"}
    for agg in ("explicit", "all"):
        v = aggregate(agg, items, essential)
        assert 0.0 <= v <= 1.0
    assert 0.0 <= aggregate("implicit", items, essential, score) <= 1.0
    if items and all(p for _, p in rows):
        assert explicit(items) == 1.0
    if items and not any(p for _, p in rows):
        assert explicit(items) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=5), st.floats(0, 1), min_size=1, max_size=5),
       st.dictionaries(st.text(min_size=1, max_size=5), st.floats(0, 10), max_size=5),
       st.sampled_from(["product", "weighted_sum"]))
def test_combine_stays_in_unit_interval(scores, w, method):
    assert 0.0 <= combine(scores, method, w) <= 1.0


def test_combine_closed_forms():
    s = {"verifiable": 1.0, "rubric": 0.5}
    assert combine(s, "product") == pytest.approx(0.5)
    assert combine(s, "weighted_sum") == pytest.approx(0.75)
    assert combine(s, "weighted_sum", {"verifiable": 3}) == pytest.approx((3 + 0.5) / 4)
    assert combine({"verifiable": 0.0, "rubric": 1.0}, "product") == 0.0
    assert combine(s, "product", {"rubric": 2}) == pytest.approx(0.25)
    assert combine(s, "product", {"rubric": 0}) == 1.0  # weight 0 leaves a score out
    with pytest.raises(ValueError):
        combine(s, "max")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        combine(s, "product", {"rubric": math.nan})
