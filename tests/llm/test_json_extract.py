"""The lenient JSON-object extractor used by structured(): total on any input."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.llm import extract_json_object

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
# Prose around the object: anything but braces and backticks (which could form fences).
prose = st.text(alphabet=st.characters(blacklist_characters="{}`"), max_size=60)


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    result = extract_json_object(text)
    assert result is None or isinstance(result, dict)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["{", "}", "[", "]", '"', ":", ",", "```", "json\n", "1", "a",
                                 "\\", " ", "null", "{\"k\": "]), max_size=80))
def test_never_raises_on_json_like_noise(parts: list[str]) -> None:
    result = extract_json_object("".join(parts))
    assert result is None or isinstance(result, dict)


@given(objects, prose, prose)
def test_finds_object_in_prose(obj: dict, before: str, after: str) -> None:
    assert extract_json_object(f"{before}{json.dumps(obj)}{after}") == obj


@given(objects, prose, prose)
def test_finds_object_in_code_fence(obj: dict, before: str, after: str) -> None:
    text = f"{before}\n```json\n{json.dumps(obj, indent=2)}\n```\n{after}"
    assert extract_json_object(text) == obj


def test_non_string_and_non_object_inputs() -> None:
    assert extract_json_object(None) is None
    assert extract_json_object("[1, 2, 3]") is None
    assert extract_json_object('"just a string"') is None
    assert extract_json_object("[" * 100_000) is None  # deep nesting: no RecursionError
    assert extract_json_object('x {"a": [1, {"b": 2}]} y {"c": 3}') == {"a": [1, {"b": 2}]}
