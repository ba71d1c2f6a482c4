"""Mistral tool calls: ``[TOOL_CALLS]`` then a JSON list ``[{"name": ..., "arguments": {...}}]``
(v3 tokenizers), or ``[TOOL_CALLS]name[ARGS]{...}`` per call (v11+). Text before the marker is
the reply's content; the template renders tools (``[AVAILABLE_TOOLS]``) itself."""

from __future__ import annotations

import json
import re

from toolzoo.agents.formats.base import ParsedReply, ToolFormat, broken_call, call_from_object, register_format
from toolzoo.agents.formats.hermes import salvage_name
from toolzoo.agents.formats.llama3_json import split_json_objects
from toolzoo.core import FunctionCall, ToolCall

MARK = "[TOOL_CALLS]"
_ARGS = "[ARGS]"
_CALL_ID = re.compile(r"\[CALL_ID\]\s*\S+?(?=\[ARGS\])")


@register_format
class MistralFormat(ToolFormat):
    name = "mistral"

    def parse(self, text: str) -> ParsedReply:
        if MARK not in text:
            return ParsedReply(content=text.strip() or None)
        head, _, rest = text.partition(MARK)
        calls, errors = [], []
        for part in rest.split(MARK):
            part = part.strip()
            if _ARGS in part:  # v11: name[ARGS]{...}
                name, _, args = _CALL_ID.sub("", part).partition(_ARGS)
                name, args = name.strip(), args.strip()
                try:
                    json.loads(args)
                    calls.append(ToolCall(id=_id(), function=FunctionCall(name=name, arguments=args)))
                    continue
                except ValueError as e:
                    call, err = broken_call(args, f"not valid JSON: {e}", name=name)
            else:
                objs, err = split_json_objects(part)
                for obj in objs:
                    call, e = call_from_object(obj, json.dumps(obj))
                    calls.append(call)
                    if e:
                        errors.append(e)
                if not err and objs:
                    continue
                err = err or "no call after [TOOL_CALLS]"
                call, _ = broken_call(part, err, name=salvage_name(part) if not objs else "")
            calls.append(call)
            errors.append(err)
        return ParsedReply(content=head.strip() or None, tool_calls=calls, parse_errors=errors)

    def render_calls(self, calls: list[ToolCall]) -> str:
        body = ", ".join(f'{{"name": {json.dumps(c.function.name)}, "arguments": {c.function.arguments}}}'
                         for c in calls)
        return f"{MARK}[{body}]"


def _id() -> str:
    from toolzoo.agents.formats.base import new_call_id

    return new_call_id()
