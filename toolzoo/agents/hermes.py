"""Import shim: the Hermes format lives in ``toolzoo.agents.formats.hermes`` (kept for
``envs/gym_env.py`` and older callers)."""

from __future__ import annotations

from toolzoo.agents.formats.base import ParsedReply
from toolzoo.agents.formats.hermes import CLOSE, OPEN, HermesFormat, render_tool_call

__all__ = ["CLOSE", "OPEN", "ParsedReply", "parse_reply", "render_tool_call"]


def parse_reply(text: str) -> ParsedReply:
    """Split a completion (end-of-turn tokens removed) into free text and Hermes tool calls."""
    return HermesFormat().parse(text)
