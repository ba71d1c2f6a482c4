"""Hermes tool-call rendering and parsing."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.agents.hermes import parse_reply, render_tool_call

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
args_st = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, args_st), max_size=3), st.text(max_size=20).filter(lambda t: "<tool_call>" not in t))
def test_render_parse_round_trip(calls, prefix):
    text = prefix + "".join(render_tool_call(n, json.dumps(a, sort_keys=True)) for n, a in calls)
    parsed = parse_reply(text)
    assert [c.function.name for c in parsed.tool_calls] == [n for n, _ in calls]
    assert [c.parsed_args() for c in parsed.tool_calls] == [a for _, a in calls]
    assert parsed.content == (prefix.strip() or None)


def test_malformed_call_keeps_raw_text():
    raw = '{"name": "get_order", "arguments": {"order_id": o0042}}'
    parsed = parse_reply(f"<tool_call>{raw}</tool_call>")
    (call,) = parsed.tool_calls
    assert call.function.name == "get_order" and call.function.arguments == raw
    truncated = parse_reply('ok <tool_call>{"name": "refund_order", "argu')
    assert truncated.content == "ok"
    assert truncated.tool_calls[0].function.name == "refund_order"
    assert truncated.tool_calls[0].function.arguments == '{"name": "refund_order", "argu'


def test_plain_text_has_no_calls():
    parsed = parse_reply("  The order is delivered.  ")
    assert parsed.tool_calls == [] and parsed.content == "The order is delivered."
