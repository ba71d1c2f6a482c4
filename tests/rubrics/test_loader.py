"""Rubric files: every problem names file, line and field; nothing but LoadError escapes."""

from __future__ import annotations


import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolzoo.config import LoadError
from toolzoo.rubrics.loader import dump_rubric, load_rubric, load_rubric_text
from toolzoo.rubrics.rubric_judge import LIBRARY_DIR, default_rubric
from toolzoo.schemas import json_schema

GOOD = """\
rubric: refund_policy
applies_to: {domain: retail_orders}
aggregation: explicit
items:
  - id: refunded_the_right_order
    criterion: The agent refunded exactly the order the user asked about.
    weight: essential
    check: "final.orders[task.bind[0].o].status == 'refunded'"
  - id: confirmed_first
    criterion: The agent asked the user to confirm before refunding.
    weight: important
"""


def problems(text: str, file: str = "r.yaml") -> list[tuple[int | None, str, str]]:
    with pytest.raises(LoadError) as info:
        load_rubric_text(text, file)
    for p in info.value.problems:
        assert p.file == file
        assert str(p).startswith(f"{file}:{p.line} " if p.line else file)
    return [(p.line, p.path, p.message) for p in info.value.problems]


def test_design_doc_example_loads():
    r = load_rubric_text(GOOD, "r.yaml")
    assert r.name == "refund_policy" and set(r.checks) == {"refunded_the_right_order"}
    assert [i.id for i in r.llm_items()] == ["confirmed_first"]
    assert r.version == load_rubric_text(GOOD.replace("aggregation: explicit\n", ""), "x").version  # default
    assert r.version != load_rubric_text(GOOD.replace("important", "optional"), "x").version


@pytest.mark.parametrize("text, line, path, words", [
    (GOOD.replace("weight: important", "weight: crucial"), 11, "items[1].weight", "essential, important"),
    (GOOD.replace("weight: important", "weight: -1"), 11, "items[1].weight", "number"),
    (GOOD.replace("status == 'refunded'\"", "status == \""), 8, "items[0].check", "CEL does not compile"),
    (GOOD.replace("final.orders", "finale.orders"), 8, "items[0].check", "unknown variable(s) finale"),
    (GOOD.replace("final.orders[task.bind[0].o]", "lookup(task.bind[0].o)"), 8, "items[0].check", "unknown function"),
    (GOOD.replace("id: confirmed_first", "id: refunded_the_right_order"), 9, "items[1].id", "duplicate item id"),
    (GOOD.replace("aggregation: explicit", "aggregation: mean"), 3, "aggregation", "'explicit'"),
    (GOOD.replace("    criterion: The agent asked", "    criteria: The agent asked"), 10, "items[1].criteria",
     "Extra inputs"),
    (GOOD.replace("rubric: refund_policy\n", ""), 1, "rubric", "Field required"),
    (GOOD.replace("applies_to: {domain: retail_orders}", "applies_to: {domian: retail_orders}"), 2,
     "applies_to.domian", "Extra inputs"),
    (GOOD + "  - oops\n", 12, "items[2]", "valid dictionary"),
    ("rubric: x\nitems: [\n", 3, "<yaml>", "YAML syntax error"),
])
def test_broken_files_name_file_line_field(text, line, path, words):
    found = problems(text)
    assert any(l == line and p == path and words in m for l, p, m in found), found


def test_every_problem_reported_at_once():
    text = GOOD.replace("weight: important", "weight: crucial").replace("aggregation: explicit", "aggregation: x")
    assert {p for _, p, _ in problems(text)} == {"items[1].weight", "aggregation"}


def test_missing_file_is_a_load_error(tmp_path):
    with pytest.raises(LoadError) as info:
        load_rubric(tmp_path / "nope.yaml")
    assert "cannot read" in str(info.value)


def test_dump_round_trips():
    r = load_rubric_text(GOOD)
    again = load_rubric_text(dump_rubric(r.spec))
    assert again.spec == r.spec and again.version == r.version


def test_library_has_a_default_per_builtin_domain():
    for domain in ("retail_orders", "bank_accounts", "helpdesk_tickets", "factworld"):
        r = default_rubric(domain)
        assert r is not None and r.spec.applies_to.domain == domain
        assert len(r.checks) >= 3 and 1 <= len(r.llm_items()) <= 3
    assert default_rubric("no_such_domain") is None
    assert len(list(LIBRARY_DIR.glob("*.yaml"))) >= 4


def test_json_schema_export():
    schema = json_schema("rubric")
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"rubric", "items"} <= set(schema["properties"])


# -- property: arbitrary YAML never crashes the loader

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
_json = st.recursive(_scalar, lambda c: st.one_of(st.lists(c, max_size=4),
                                                  st.dictionaries(st.text(max_size=10), c, max_size=4)), max_leaves=20)
_item = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(max_size=12), st.integers(), st.none()),
    "criterion": st.one_of(st.text(max_size=20), st.integers()),
    "weight": st.one_of(st.sampled_from(["essential", "important", "optional", "pitfall", "x"]), _scalar),
    "check": st.one_of(st.text(max_size=30), st.sampled_from(["calls.all(c, c.error == null)", "final.x ==",
                                                              "said(1)", "nope(2)", "task.answers[0]"]), _scalar),
    "extra": _scalar})
_rubric = st.fixed_dictionaries({}, optional={
    "rubric": st.one_of(st.text(max_size=12), _scalar), "aggregation": st.one_of(
        st.sampled_from(["explicit", "implicit", "all"]), _scalar),
    "items": st.one_of(st.lists(_item, max_size=4), _json), "applies_to": st.one_of(_json, st.just({"domain": "d"})),
    "version": _scalar})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_load_error(text):
    try:
        load_rubric_text(text, "fuzz.yaml")
    except LoadError as exc:
        assert all(p.file == "fuzz.yaml" for p in exc.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_rubric, _json))
def test_arbitrary_structures_only_raise_load_error(data):
    text = yaml.safe_dump(data)
    try:
        r = load_rubric_text(text, "fuzz.yaml")
    except LoadError as exc:
        assert exc.problems and all(p.file == "fuzz.yaml" and p.path for p in exc.problems)
    else:
        assert r.items and len({i.id for i in r.items}) == len(r.items)
