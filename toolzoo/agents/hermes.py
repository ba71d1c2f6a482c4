"""Hermes/Qwen tool-call text: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

Shared by the local HF agent and the local model server. Parsing never raises: a block that
is not valid JSON (or is cut off by the length limit) still becomes a ``ToolCall`` whose
``arguments`` is the raw text, so the episode can answer with a tool error the agent sees.
"""

from __future__ import annotations

import json
import re
import uuid

from pydantic import BaseModel

from toolzoo.core import FunctionCall, ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|\Z)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


class ParsedReply(BaseModel):
    content: str | None = None
    tool_calls: list[ToolCall] = []


def render_tool_call(name: str, arguments: str) -> str:
    """The text the chat template renders for one call (``arguments`` verbatim)."""
    return f'{OPEN}{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": {arguments}}}{CLOSE}'


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def _parse_block(body: str) -> ToolCall:
    text = body.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("name"), str):
        args = obj.get("arguments", {})
        if isinstance(args, str):  # some models emit arguments as a JSON string
            arguments = args
        else:
            arguments = json.dumps(args, ensure_ascii=False)
        return ToolCall(id=_new_id(), function=FunctionCall(name=obj["name"], arguments=arguments))
    m = _NAME.search(text)
    try:
        name = json.loads(f'"{m.group(1)}"') if m else ""
    except ValueError:
        name = m.group(1) if m else ""
    return ToolCall(id=_new_id(), function=FunctionCall(name=name, arguments=text))


def parse_reply(text: str) -> ParsedReply:
    """Split a completion (special end-of-turn tokens already removed) into its free text and
    its tool calls, in order."""
    calls = [_parse_block(m.group(1)) for m in _BLOCK.finditer(text)]
    content = _BLOCK.sub("", text).strip()
    return ParsedReply(content=content or None, tool_calls=calls)
