"""ScriptedUser: states the task's subtasks in order and answers questions about them.

Modes: ``per_turn`` (one subtask per user turn, the next once the agent gives a final reply)
or ``all_at_once`` (every subtask in the first message). When the agent asks a question
instead of acting, the user restates the current subtask's bound values (at most
``max_clarifications`` times per subtask). It stops once every subtask was asked and the
agent's last reply is final (no tool call, not a question).
"""

from __future__ import annotations

from typing import Literal

from toolzoo.core import Message, Task
from toolzoo.envs.user import UserReply


class ScriptedUser:
    __slots__ = ("mode", "max_clarifications", "task", "_asked", "_clarified")

    def __init__(self, mode: Literal["per_turn", "all_at_once"] = "per_turn", max_clarifications: int = 2):
        self.mode = mode
        self.max_clarifications = max_clarifications
        self.task: Task | None = None
        self._asked = 0
        self._clarified = 0

    async def start(self, task: Task) -> None:
        self.task, self._asked, self._clarified = task, 0, 0

    def _say(self, text: str) -> UserReply:
        return UserReply(message=Message(role="user", content=text))

    def _with_distractor(self, text: str, index: int) -> str:
        assert self.task is not None
        if self.task.distractors:
            return f"{self.task.distractors[index % len(self.task.distractors)]} {text}"
        return text

    async def respond(self, messages: list[Message]) -> UserReply:
        task = self.task
        if task is None:
            raise RuntimeError("start(task) was not called")
        subs = task.subtasks
        if self._asked == 0:
            if self.mode == "all_at_once":
                self._asked = len(subs)
                lines = [self._with_distractor(s.ask, i) for i, s in enumerate(subs)]
                return self._say("\n".join(f"{i + 1}. {line}" for i, line in enumerate(lines)))
            self._asked = 1
            return self._say(self._with_distractor(subs[0].ask, 0))
        last = next((m for m in reversed(messages) if m.role == "assistant"), None)
        text = (last.content or "").strip() if last else ""
        if text.endswith("?") and self._clarified < self.max_clarifications:
            self._clarified += 1
            current = subs[self._asked - 1]
            details = ", ".join(f"{k} = {v}" for k, v in current.bind.items())
            return self._say(f"To be clear: {current.ask}" + (f" (details: {details})" if details else ""))
        if self._asked < len(subs):
            self._clarified = 0
            self._asked += 1
            return self._say(self._with_distractor(subs[self._asked - 1].ask, self._asked - 1))
        return UserReply(stop=True)
