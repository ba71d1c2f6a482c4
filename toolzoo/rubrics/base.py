"""The Judge contract. The verifiable judge runs inside every episode (it decides success and
per-subtask progress); further judges (rubrics) score the finished trajectory."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from toolzoo.core import Score, Task, Trajectory


class JudgeError(Exception):
    """The judge itself failed (endpoint down after retries, unusable verdicts): the episode
    becomes a ``judge`` failure, never an agent failure."""


@runtime_checkable
class Judge(Protocol):
    name: str

    async def score(self, task: Task, trajectory: Trajectory, final_state: dict[str, Any] | None) -> Score: ...
