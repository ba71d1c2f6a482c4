"""Llama 3.1/3.2 JSON tool calls: the reply is ``{"name": ..., "parameters": {...}}`` (after an
optional ``<|python_tag|>``), several separated by ``;``; the template renders the tools (in the
first user message) and earlier calls itself."""

from __future__ import annotations

import json

from toolzoo.agents.formats.base import ParsedReply, ToolFormat, broken_call, call_from_object, register_format
from toolzoo.agents.formats.hermes import salvage_name
from toolzoo.core import ToolCall

PYTHON_TAG = "<|python_tag|>"


def split_json_objects(text: str) -> tuple[list[object], str | None]:
    """Decode consecutive JSON values separated by whitespace, ``;`` or ``,``; on failure the
    error text (what parsed before it is returned too)."""
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i] in " \t\r\n;,":
            i += 1
        if i >= len(text):
            return out, None
        try:
            obj, i = dec.raw_decode(text, i)
        except ValueError as e:
            return out, f"not valid JSON: {e}"
        out.extend(obj if isinstance(obj, list) else [obj])


@register_format
class Llama3JsonFormat(ToolFormat):
    name = "llama3_json"

    def parse(self, text: str) -> ParsedReply:
        body = text.strip()
        tagged = body.startswith(PYTHON_TAG)
        body = body.removeprefix(PYTHON_TAG).strip()
        if not (tagged or (body.startswith("{") and '"name"' in body)):
            return ParsedReply(content=body or None)
        objs, err = split_json_objects(body)
        return calls_reply(objs, err, body)

    def render_calls(self, calls: list[ToolCall]) -> str:
        return "; ".join(f'{{"name": {json.dumps(c.function.name)}, "parameters": {c.function.arguments}}}'
                         for c in calls)


def calls_reply(objs: list, err: str | None, body: str) -> ParsedReply:
    """A reply made only of JSON call objects (``objs``), plus one broken call carrying the
    text that did not parse (``err``: why) -- shared by the JSON-convention formats."""
    calls, errors = [], []
    for obj in objs:
        call, e = call_from_object(obj, json.dumps(obj))
        calls.append(call)
        if e:
            errors.append(e)
    if err:  # the rest did not parse: one broken call carries it
        call, _ = broken_call(body, err, name=salvage_name(body) if not objs else "")
        calls.append(call)
        errors.append(err)
    return ParsedReply(content=None, tool_calls=calls, parse_errors=errors)
