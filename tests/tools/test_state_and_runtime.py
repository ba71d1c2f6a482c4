"""State store, seeding, transactional effects; hypothesis: random arguments never crash a tool
and never change state on error."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.state import seed_state, state_hash
from toolzoo.tools.zoo import builtin_names, get_domain

EFFECT_DOMAINS = [n for n in builtin_names() if all(t.effects is not None for t in get_domain(n).spec.tools)]


@pytest.mark.parametrize("name", EFFECT_DOMAINS)
def test_same_seed_same_state_different_seed_different_state(name):
    spec = get_domain(name).spec
    a, b, c = seed_state(spec, 7), seed_state(spec, 7), seed_state(spec, 8)
    assert a.data == b.data and a.hash() == b.hash()
    assert a.hash() != c.hash()
    assert state_hash(a.to_json()) == a.hash()


def test_snapshot_restore_and_copy_on_write():
    d = get_domain("retail_orders")
    state = seed_state(d.spec, 0)
    snap, before = state.snapshot(), state.hash()
    rt = DomainRuntime(d, state)
    order = next(k for k, v in state.data["orders"].items() if v["status"] == "placed")
    assert not rt.call_sync("cancel_order", {"order_id": order}).is_error
    assert state.hash() != before
    assert snap["orders"][order]["status"] == "placed"  # the snapshot did not see the write
    state.restore(snap)
    assert state.hash() == before


def test_all_or_nothing_when_a_later_effect_fails(tmp_path):
    from toolzoo.tools.loader import load_domain_text

    d = load_domain_text("""
domain: t
state:
  items: {key: id, schema: {type: object, properties: {id: {type: string}, n: {type: integer, maximum: 5}}}}
seed:
  items: {count: 2, fields: {id: {pattern: "i{i}"}, n: {value: 1}}}
tools:
  - name: bump_both
    parameters: {type: object, properties: {by: {type: integer}}, required: [by]}
    effects:
      - set: {collection: items, key: "'i0'", field: n, value: "state.items['i0'].n + args.by"}
      - set: {collection: items, key: "'i1'", field: n, value: "state.items['i1'].n + args.by * 10"}
      - return: "state.items['i1'].n"
""", "t.yaml")
    state = seed_state(d.spec, 0)
    rt = DomainRuntime(d, state)
    before = state.hash()
    result = rt.call_sync("bump_both", {"by": 1})  # i1 would become 11 > maximum 5
    assert result.is_error and "maximum" in result.content
    assert state.hash() == before
    ok = rt.call_sync("bump_both", {"by": 0})
    assert not ok.is_error and ok.structured == 1
    # whole-number floats are accepted where the schema says integer
    assert not rt.call_sync("bump_both", {"by": 0.0}).is_error


def test_errors_name_tool_and_argument():
    d = get_domain("retail_orders")
    rt = DomainRuntime(d, seed_state(d.spec, 0))
    bad_type = rt.call_sync("get_order", {"order_id": 5})
    assert bad_type.is_error and "get_order" in bad_type.content and "order_id" in bad_type.content
    missing = rt.call_sync("get_order", {})
    assert missing.is_error and "order_id" in missing.content
    unknown = rt.call_sync("teleport", {})
    assert unknown.is_error and "teleport" in unknown.content
    req = rt.call_sync("get_order", {"order_id": "nope"})
    assert req.is_error and "no order nope" in req.content


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("name", EFFECT_DOMAINS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_arguments_never_crash_and_never_change_state_on_error(name, data):
    d = get_domain(name)
    state = seed_state(d.spec, 0)
    rt = DomainRuntime(d, state)
    keys = [k for recs in state.data.values() for k in recs][:40] or ["x"]
    for _ in range(5):
        tool = data.draw(st.sampled_from(sorted(d.tools)))
        props = d.tools[tool].spec.parameters.get("properties", {})
        args = data.draw(st.dictionaries(
            st.sampled_from(sorted(props) + ["zzz"]) if props else st.just("zzz"),
            st.sampled_from(keys) | json_values, max_size=4))
        before = state.hash()
        result = asyncio.run(rt.call(tool, args))
        assert isinstance(result.content, str)
        if result.is_error:
            assert state.hash() == before, f"{tool}({args}) failed but changed state: {result.content}"
        # state stays schema-valid whatever happened
        for coll, recs in state.data.items():
            validator = d.record_validators.get(coll)
            for rec in recs.values():
                assert validator is None or validator.is_valid(rec)
