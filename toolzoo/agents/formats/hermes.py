"""Hermes/Qwen tool calls: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; the
template (Qwen2.5's, toolzoo's tiny one) renders the tools and earlier calls itself."""

from __future__ import annotations

import json
import re

from toolzoo.agents.formats.base import ParsedReply, ToolFormat, broken_call, call_from_object, register_format
from toolzoo.core import ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|\Z)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def render_tool_call(name: str, arguments: str) -> str:
    """The text the chat template renders for one call (``arguments`` verbatim)."""
    return f'{OPEN}{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": {arguments}}}{CLOSE}'


def salvage_name(text: str) -> str:
    """The ``"name"`` of a call whose JSON is broken, when it can be read (better errors)."""
    m = _NAME.search(text)
    if not m:
        return ""
    try:
        return json.loads(f'"{m.group(1)}"')
    except ValueError:
        return m.group(1)


def parse_json_call(body: str) -> tuple[ToolCall, str | None]:
    text = body.strip()
    try:
        obj = json.loads(text)
    except ValueError as e:
        # a broken block keeps the name it shows, so the error says which tool's arguments broke
        return broken_call(text, f"not valid JSON: {e}", name=salvage_name(text))
    return call_from_object(obj, text)


@register_format
class HermesFormat(ToolFormat):
    name = "hermes"

    def parse(self, text: str) -> ParsedReply:
        calls, errors = [], []
        for m in _BLOCK.finditer(text):
            call, err = parse_json_call(m.group(1))
            calls.append(call)
            if err:
                errors.append(err)
        content = _BLOCK.sub("", text).strip()
        return ParsedReply(content=content or None, tool_calls=calls, parse_errors=errors)

    def render_calls(self, calls: list[ToolCall]) -> str:
        return "\n".join(render_tool_call(c.function.name, c.function.arguments) for c in calls)
