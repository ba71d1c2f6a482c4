"""A generic JSON tool-call convention for chat templates without tool support (SmolLM2's).

The tools and the convention are written into the system prompt; a call is a reply made of
JSON objects ``{"name": ..., "arguments": {...}}`` (one per line, optionally in a ```json
fence); earlier calls are rendered back as that text and tool results as user turns, so the
template needs nothing but plain user/assistant/system turns. A reply that starts like a JSON
object but does not parse is a broken call (counted, answered with a tool error)."""

from __future__ import annotations

import json
from typing import Any

from toolzoo.agents.formats.base import ParsedReply, ToolFormat, register_format
from toolzoo.agents.formats.llama3_json import calls_reply, split_json_objects
from toolzoo.core import Message, ToolCall, ToolSpecView

CONVENTION = (
    "To use a tool, reply with only a JSON object on one line: "
    '{"name": "<tool name>", "arguments": {<arguments>}}. '
    "The result comes back in the next message. When you have what you need, reply in plain text."
)


_SIMPLE = ("string", "integer", "number", "boolean")


def signature(tool: ToolSpecView) -> str | None:
    """``name(a: string, b?: integer one of 1|2): description`` for flat schemas (a few tokens
    where the JSON Schema takes dozens; a small model's prompt is mostly its tool list), or None
    when the schema needs its JSON (nested objects, arrays, combinators)."""
    params = tool.parameters or {}
    props = params.get("properties") or {}
    required = set(params.get("required") or [])
    args = []
    for name, sch in props.items():
        kind = sch.get("type")
        if kind not in _SIMPLE or any(k in sch for k in ("anyOf", "oneOf", "allOf", "$ref")):
            return None
        text = f"{name}{'' if name in required else '?'}: {kind}"
        if "enum" in sch:
            text += " one of " + "|".join(json.dumps(v) for v in sch["enum"])
        args.append(text)
    desc = f": {tool.description}" if tool.description else ""
    return f"- {tool.name}({', '.join(args)}){desc}"


def tools_text(tools: list[ToolSpecView]) -> str:
    lines = ["You can use these tools (`?`: optional argument):"]
    for t in tools:
        lines.append(signature(t) or "- " + json.dumps(
            {"name": t.name, "description": t.description, "parameters": t.parameters},
            ensure_ascii=False, sort_keys=True))
    return "\n".join(lines) + "\n" + CONVENTION


def _strip_fence(text: str) -> str:
    s = text.strip()
    if s.startswith("```"):
        s = s.split("\n", 1)[1] if "\n" in s else ""
        s = s.rsplit("```", 1)[0]
    return s.strip()


@register_format
class GenericFormat(ToolFormat):
    name = "generic"
    template_renders_tools = False

    def chat_input(self, messages: list[Message], tools: list[ToolSpecView] | None,
                   tokenizer=None) -> tuple[list[dict[str, Any]], None]:
        out: list[dict[str, Any]] = []
        extra = tools_text(tools) if tools else ""
        system_done = False
        for m in messages:
            if m.role == "system":
                text = "\n\n".join(x for x in (m.content or "", extra) if x)
                out.append({"role": "system", "content": text})
                system_done = True
            elif m.role == "assistant":
                text = m.content or ""
                if m.tool_calls:
                    text = "\n".join(x for x in (text, self.render_calls(m.tool_calls)) if x)
                out.append({"role": "assistant", "content": text})
            elif m.role == "tool":
                out.append({"role": "user", "content": f"Tool result ({m.name or 'tool'}): {m.content or ''}"})
            else:
                out.append({"role": m.role, "content": m.content or ""})
        if extra and not system_done:
            out.insert(0, {"role": "system", "content": extra})
        return out, None

    def parse(self, text: str) -> ParsedReply:
        body = _strip_fence(text)
        if not body.startswith("{"):
            return ParsedReply(content=text.strip() or None)
        objs, err = split_json_objects(body)
        return calls_reply(objs, err, body)

    def render_calls(self, calls: list[ToolCall]) -> str:
        return "\n".join(f'{{"name": {json.dumps(c.function.name)}, "arguments": {c.function.arguments}}}'
                         for c in calls)
