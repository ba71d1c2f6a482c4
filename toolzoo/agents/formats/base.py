"""The tool-call format contract and its registry.

A format decides two things a chat template may or may not know: how the conversation (tool
specs, the assistant's earlier calls, tool results) is given to the template, and how a
completion's text is split into free text and tool calls. Formats whose model family's
template renders tools itself (Hermes/Qwen, Llama 3.1, Mistral) pass messages and tools
through; the ``generic`` format renders them into the prompt for templates without tool
support (SmolLM2's).

Parsing never raises and never drops a call silently: text that looks like a call but does
not parse still becomes a ``ToolCall`` (empty name or raw-text arguments), which the episode
answers with an agent-visible tool error (``toolcall_check.validate_tool_call``), and the
problem is listed in ``ParsedReply.parse_errors`` (counted on the message).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar

from pydantic import BaseModel

from toolzoo.core import FunctionCall, Message, ToolCall, ToolSpecView


class ParsedReply(BaseModel):
    content: str | None = None
    tool_calls: list[ToolCall] = []
    parse_errors: list[str] = []  # one per call-like text that did not parse


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def call_from_object(obj: Any, raw: str, args_keys: tuple[str, ...] = ("arguments", "parameters")) -> tuple[ToolCall, str | None]:
    """A ``ToolCall`` from a decoded ``{"name": ..., "arguments": {...}}`` object, or a broken
    one (with the error text) when the object has no usable name."""
    if isinstance(obj, dict) and isinstance(obj.get("name"), str) and obj["name"]:
        args = next((obj[k] for k in args_keys if k in obj), {})
        arguments = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        return ToolCall(id=new_call_id(), function=FunctionCall(name=obj["name"], arguments=arguments)), None
    return broken_call(raw, "no tool name (expected {\"name\": ..., \"arguments\": {...}})")


def broken_call(raw: str, why: str, name: str = "") -> tuple[ToolCall, str]:
    """A call that did not parse: kept with its raw text so the episode answers it with an error."""
    return ToolCall(id=new_call_id(), function=FunctionCall(name=name, arguments=raw.strip())), why


class ToolFormat:
    """Base class; subclasses set ``name`` and implement ``parse`` and ``render_calls``."""

    name: ClassVar[str] = ""
    # whether the chat template renders tools and tool calls itself (else ``chat_input`` does)
    template_renders_tools: ClassVar[bool] = True

    def chat_input(self, messages: list[Message], tools: list[ToolSpecView] | None,
                   tokenizer=None) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """(messages, tools) as ``apply_chat_template`` takes them."""
        from toolzoo.agents.hf import chat_messages, chat_tools

        return chat_messages(messages, tokenizer), chat_tools(tools)

    def parse(self, text: str) -> ParsedReply:
        raise NotImplementedError

    def render_calls(self, calls: list[ToolCall]) -> str:
        """The text a model of this family emits for ``calls`` (tests; the generic format's
        rendering of earlier turns)."""
        raise NotImplementedError


_FORMATS: dict[str, type[ToolFormat]] = {}


def register_format(cls: type[ToolFormat]) -> type[ToolFormat]:
    if not cls.name or cls.name in _FORMATS:
        raise ValueError(f"tool format name {cls.name!r} is empty or already registered")
    _FORMATS[cls.name] = cls
    return cls


def _load_builtins() -> None:
    from toolzoo.agents.formats import generic, hermes, llama3_json, mistral  # noqa: F401


def format_names() -> list[str]:
    _load_builtins()
    return sorted(_FORMATS)


def get_format(name: str) -> ToolFormat:
    _load_builtins()
    if name not in _FORMATS:
        raise ValueError(f"unknown tool format {name!r}; known: {', '.join(sorted(_FORMATS))}")
    return _FORMATS[name]()


def detect_format(tokenizer) -> ToolFormat:
    """The format a tokenizer's chat template speaks: Hermes when it renders ``<tool_call>``,
    Llama 3 JSON for ``<|python_tag|>``/``"parameters"``, Mistral for ``[TOOL_CALLS]``, else
    generic (the template ignores tools)."""
    t = getattr(tokenizer, "chat_template", None)
    t = t if isinstance(t, str) else ""
    if "<tool_call>" in t:
        return get_format("hermes")
    if "[TOOL_CALLS]" in t:
        return get_format("mistral")
    if "<|python_tag|>" in t or ("tool_calls" in t and "parameters" in t and "<|eot_id|>" in t):
        return get_format("llama3_json")
    return get_format("generic")


def parse_error_count(messages: list[Message]) -> int:
    """Tool calls the assistant wrote that did not parse, over a conversation."""
    return sum(m.parse_errors or 0 for m in messages if m.role == "assistant")
