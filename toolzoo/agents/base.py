"""The Agent contract every policy implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from toolzoo.core import Message, Task, ToolSpecView


class AgentError(Exception):
    """The agent could not produce a message for reasons outside its control (infra failure:
    endpoint unreachable after retries, server errors). Agent *mistakes* are never raised:
    they are returned as messages and judged."""


@runtime_checkable
class Agent(Protocol):
    async def start(self, task: Task) -> None:
        """Called once at the start of an episode. Scripted agents read the task here;
        model-backed agents ignore it (they must never see the reference solution)."""

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        """Return the next assistant message: text and/or tool calls. Trainable policies fill
        ``Message.tokens`` (prompt ids, completion ids, log-probs)."""
