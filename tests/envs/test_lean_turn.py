"""The turn loop's fast paths give exactly what the slow ones gave.

* Tool-call arguments are parsed with orjson and fall back to ``json`` where orjson refuses or
  reads differently (NaN, integers past 64 bits): the tool sees ``json.loads``'s value.
* The end of an episode reads the state and its hash from one encoding
  (``State.hashed_json``): equal to ``to_json()`` and ``hash()``.
* Checkpoints read the touched records with one round trip: equal to ``to_json()``'s records.
* The answer judge's cached ``normalise`` equals the uncached one.
"""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.envs.episode import _json_object
from toolzoo.rubrics.answers import _normalise, normalise
from toolzoo.tools.state import State, canonical_json, state_hash

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=20)


def _same(a, b) -> bool:
    """Equality with NaN equal to itself and int/float kept apart (1 vs 1.0 matters to a tool)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@settings(max_examples=400, deadline=None)
@given(json_values, st.sampled_from([None, 2]))
def test_arguments_parse_as_json_loads_does(value, indent):
    raw = json.dumps(value, indent=indent)
    expected = json.loads(raw)
    got = _json_object(raw)
    if isinstance(expected, dict):
        assert got is not None and _same(got, expected), raw
    else:
        assert got is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_parses_as_json_loads_does(raw):
    try:
        expected = json.loads(raw)
    except (ValueError, RecursionError):
        expected = None
    got = _json_object(raw)
    if isinstance(expected, dict):
        assert got is not None and _same(got, expected)
    else:
        assert got is None


def test_argument_edge_cases():
    assert _json_object('{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert math.isnan(_json_object('{"x": NaN}')["x"])
    assert _json_object('{"x": 1e400}')["x"] == math.inf
    assert _json_object('{"a": 1, "a": 2}') == {"a": 2}
    assert _json_object('{"s": "\\ud800"}') == {"s": "\ud800"}
    assert _json_object("[1, 2]") is None and _json_object("{bad") is None and _json_object('"x"') is None


records = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), json_values, max_size=4)
states = st.dictionaries(st.sampled_from(["users", "orders"]),
                         st.dictionaries(st.text(min_size=1, max_size=4), records, max_size=5), min_size=1)


@settings(max_examples=200, deadline=None)
@given(states)
def test_hashed_json_is_to_json_and_hash(data):
    state = State(data)
    snap, digest = state.hashed_json()
    assert digest == state.hash() == state_hash(state.to_json())
    assert json.dumps(snap, sort_keys=True) == json.dumps(state.to_json(), sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(states)
def test_to_json_reads_the_canonical_text_as_json_loads_does(data):
    # to_json skips the long-digit search when orjson wrote the text: still json.loads's values.
    state = State(data)
    assert _same(state.to_json(), json.loads(canonical_json(state.data)))


@settings(max_examples=200, deadline=None)
@given(states, st.data())
def test_records_json_is_to_json_of_those_records(data, draw):
    state = State(data)
    full = state.to_json()
    touched = {coll: draw.draw(st.lists(st.sampled_from(sorted(recs) + ["missing"]), max_size=3, unique=True))
               for coll, recs in data.items()}
    expected = {coll: {k: full[coll].get(k) for k in keys} for coll, keys in touched.items()}
    assert json.dumps(state.records_json(touched), sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_a_value_is_written_the_same_whatever_else_the_state_holds():
    # Hypothesis found this: an integer past 64 bits sends the whole encoding down json's path,
    # which wrote inf as "Infinity" where orjson writes null, so a record's text (and a
    # checkpoint's view of it) depended on an unrelated record elsewhere in the state.
    alone = canonical_json({"a": [math.inf, math.nan]})
    beside_big = canonical_json({"a": [math.inf, math.nan], "b": -9223372036854775809})
    assert alone == '{"a":[null,null]}'
    assert beside_big == '{"a":[null,null],"b":-9223372036854775809}'
    state = State({"users": {"0": {"a": [math.inf]}}, "orders": {"0": {"a": [-(2**63) - 1]}}})
    assert state.to_json()["users"] == state.records_json({"users": ["0"]})["users"] == {"0": {"a": [None]}}
    assert state.to_json()["orders"]["0"]["a"] == [-(2**63) - 1]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.integers(), st.floats(allow_nan=False), st.booleans()))
def test_cached_normalise_is_normalise(value):
    assert normalise(value) == _normalise(value)
    assert normalise(value) == _normalise(value)  # a cache hit too
