"""Checks on a model's tool call before it runs: unknown tool names and unparsable arguments.

The episode loop answers a failing call with a tool error message (``is_error``) instead of
running it, so the agent sees its mistake and the mistake counts against the agent."""

from __future__ import annotations

import json
from collections.abc import Iterable

from toolzoo.core import ToolCall, ToolSpecView

_SHOW = 200  # characters of bad arguments quoted back to the model


def validate_tool_call(call: ToolCall, tools: Iterable[str] | Iterable[ToolSpecView]) -> str | None:
    """The error text to return to the agent for this call, or None when it may run.

    ``tools`` is the episode's tool names (or ToolSpecViews). Argument *schema* checks are left
    to the tool server, which reports them as tool errors itself."""
    names = sorted(t.name if isinstance(t, ToolSpecView) else t for t in tools)
    name = call.function.name
    if not name:  # the reply looked like a call but no tool name could be read from it
        raw = call.function.arguments or ""
        quoted = raw if len(raw) <= _SHOW else raw[:_SHOW] + "..."
        return (f"Error: could not parse your tool call: {quoted}. Write one call as "
                f'{{"name": "<tool>", "arguments": {{...}}}} in the format you were shown.')
    if name not in names:
        shown = ", ".join(names) if names else "(none)"
        return f"Error: unknown tool {name!r}. Available tools: {shown}."
    raw = call.function.arguments
    if not raw or not raw.strip():
        return None  # no arguments at all: treated as {}
    quoted = raw if len(raw) <= _SHOW else raw[:_SHOW] + "..."
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        detail = (f"{e.msg} at line {e.lineno} column {e.colno}"
                  if isinstance(e, json.JSONDecodeError) else str(e) or type(e).__name__)
        return (f"Error: the arguments of tool {name!r} are not valid JSON ({detail}): {quoted}."
                f" Send the arguments as one JSON object.")
    if not isinstance(value, dict):
        return (f"Error: the arguments of tool {name!r} must be a JSON object, got a JSON "
                f"{_json_type(value)}: {quoted}.")
    return None


def _json_type(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
