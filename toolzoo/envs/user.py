"""The UserSimulator contract."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from toolzoo.core import Message, Task


class UserReply(BaseModel):
    """What a user simulator says next. ``stop`` ends the episode (``message`` may be None).
    ``violation`` is set when the simulator broke its role (contradicted the task, revealed
    the solution): the episode is then a ``user_sim`` failure, never an agent failure."""

    message: Message | None = None
    stop: bool = False
    violation: str | None = None


class UserSimError(Exception):
    """The user simulator itself failed (endpoint down after retries, unusable output)."""


@runtime_checkable
class UserSimulator(Protocol):
    async def start(self, task: Task) -> None: ...

    async def respond(self, messages: list[Message]) -> UserReply: ...
