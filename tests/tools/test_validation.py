"""The compiled argument/record validator: same verdicts and the same messages as jsonschema
(property-tested), built once per tool at load, and clear tool-call errors."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.tools.loader import load_domain_text
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.state import seed_state
from toolzoo.tools.validation import CompiledValidator, argument_problem, compiled_validator
from toolzoo.tools.zoo import get_domain

SCHEMAS = [
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"],
     "additionalProperties": False},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 10},
                                      "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}},
     "required": ["n"]},
    {"type": "object", "properties": {"p": {"prefixItems": [{"type": "string"}, {"type": "number"}]},
                                      "d": {"type": "object", "dependentRequired": {"x": ["y"]}},
                                      "s": {"type": "string", "pattern": "^o[0-9]+$", "minLength": 2}}},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 15) | st.floats(-5, 15, allow_nan=False) | st.sampled_from(["a", "b", "o12", "x", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["x", "y", "z"]), inner, max_size=3),
    max_leaves=6)
instances = st.dictionaries(st.sampled_from(["order_id", "n", "tags", "p", "d", "s", "extra"]), json_values, max_size=4)


@settings(max_examples=400, deadline=None)
@given(schema=st.sampled_from(SCHEMAS), instance=instances)
def test_same_verdicts_and_messages_as_jsonschema(schema, instance):
    reference = jsonschema.Draft202012Validator(schema)
    fast = compiled_validator(schema)
    assert fast.is_valid(instance) == reference.is_valid(instance)
    assert [(list(e.absolute_path), e.message) for e in fast.iter_errors(instance)] == \
        [(list(e.absolute_path), e.message) for e in reference.iter_errors(instance)]


def test_error_messages_name_the_tool_and_the_argument():
    rt = DomainRuntime(get_domain("retail_orders"), seed_state(get_domain("retail_orders").spec, 0))
    bad_type = rt.call_sync("get_order", {"order_id": 5})
    assert bad_type.is_error and bad_type.content == "get_order: invalid arguments: argument 'order_id': 5 is not of type 'string'"
    missing = rt.call_sync("get_order", {})
    assert missing.is_error and missing.content == "get_order: invalid arguments: 'order_id' is a required property"
    extra = rt.call_sync("get_order", {"order_id": "o0001", "x": 1})
    assert extra.is_error and "get_order: invalid arguments:" in extra.content and "'x'" in extra.content
    not_object = rt.call_sync("get_order", ["o0001"])
    assert not_object.is_error and not_object.content == "get_order: arguments must be an object, got list"
    assert not rt.call_sync("get_order", {"order_id": "o0001"}).is_error


def test_argument_problem_lists_at_most_three_problems_in_path_order():
    schema = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcd"}}
    msg = argument_problem("t", compiled_validator(schema), {"d": "x", "c": "x", "b": "x", "a": "x"})
    assert msg == ("t: invalid arguments: argument 'a': 'x' is not of type 'integer'; "
                   "argument 'b': 'x' is not of type 'integer'; argument 'c': 'x' is not of type 'integer'")
    assert argument_problem("t", compiled_validator(schema), {"a": 1}) is None


def test_validators_are_compiled_once_per_tool_and_collection_at_load():
    d = get_domain("retail_orders")
    assert all(isinstance(t.validator, CompiledValidator) for t in d.tools.values())
    assert all(isinstance(v, CompiledValidator) for v in d.record_validators.values())


def test_a_write_that_breaks_the_record_schema_is_still_a_clear_tool_error():
    domain = load_domain_text("""
domain: tiny
state:
  items:
    key: id
    schema: {type: object, required: [id, n], properties: {id: {type: string}, n: {type: integer, minimum: 0}}}
tools:
  - name: set_n
    description: set n
    parameters: {type: object, properties: {id: {type: string}, n: {type: integer}}, required: [id, n]}
    effects:
      - set: {collection: items, key: "args.id", field: n, value: "args.n"}
""")
    from toolzoo.tools.state import State

    rt = DomainRuntime(domain, State({"items": {"a": {"id": "a", "n": 1}}}, {"items": "id"}))
    bad = rt.call_sync("set_n", {"id": "a", "n": -1})
    assert bad.is_error and "items n: -1 is less than the minimum of 0" in bad.content
    assert rt.state.get("items", "a")["n"] == 1
    assert not rt.call_sync("set_n", {"id": "a", "n": 3}).is_error


@pytest.mark.parametrize("value", [float("inf"), 10**30, object()])
def test_values_the_compiled_side_cannot_read_fall_back_to_the_reference(value):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    reference = jsonschema.Draft202012Validator(schema)
    try:
        expected = reference.is_valid({"n": value})
    except Exception:
        pytest.skip("the reference itself cannot judge this value")
    assert compiled_validator(schema).is_valid({"n": value}) == expected


NEGATED_CHECK = """
domain: wallet
state:
  accounts:
    key: id
    schema: {type: object, required: [id, balance], properties: {id: {type: string}, balance: {type: number}}}
tools:
  - name: withdraw
    description: Take an amount out of an account that holds enough (the check written negated).
    parameters: {type: object, properties: {id: {type: string}, amount: {type: number, minimum: 0}, memo: {}},
                 required: [id, amount]}
    effects:
      - require: "!(args.amount > state.accounts[args.id].balance)"
        error: "not enough money"
      - set: {collection: accounts, key: "args.id", field: balance, value: "state.accounts[args.id].balance - args.amount"}
"""


@pytest.mark.parametrize("args, where", [
    ({"id": "a", "amount": float("nan")}, "amount"),
    ({"id": "a", "amount": float("inf")}, "amount"),  # also what json.loads makes of 1e400
    ({"id": "a", "amount": 1.0, "memo": {"x": [1, float("-inf")]}}, "memo.x.1"),  # untyped: no schema rule sees it
])
def test_nan_and_infinity_are_tool_errors_naming_the_argument(args, where):
    # A NaN makes every comparison false: the negated check above would let it through and
    # write a NaN balance. JSON has neither; the agent gets a tool error and nothing changes.
    from toolzoo.tools.state import State

    rt = DomainRuntime(load_domain_text(NEGATED_CHECK), State({"accounts": {"a": {"id": "a", "balance": 5.0}}},
                                                               {"accounts": "id"}))
    bad = rt.call_sync("withdraw", args)
    assert bad.is_error
    assert bad.content == f"withdraw: invalid arguments: argument {where!r}: NaN and Infinity are not JSON numbers"
    assert rt.state.get("accounts", "a")["balance"] == 5.0
    ok = rt.call_sync("withdraw", {"id": "a", "amount": 2.5, "memo": {"x": [1, 2.0]}})
    assert not ok.is_error and rt.state.get("accounts", "a")["balance"] == 2.5


@settings(max_examples=300, deadline=None)
@given(instance=instances, data=st.data())
def test_a_non_finite_number_anywhere_is_found(instance, data):
    from toolzoo.tools.validation import _non_finite

    assert _non_finite(instance) is None  # the strategy's floats are finite
    if not instance:
        return
    key = data.draw(st.sampled_from(sorted(instance)))
    bad = dict(instance, **{key: [data.draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))]})
    assert _non_finite(bad) == f"{key}.0"
