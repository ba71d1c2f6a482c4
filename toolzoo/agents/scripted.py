"""Scripted baseline agents: the oracle, the noisy oracle (known hazard) and a random agent.

The oracle follows the task's reference trace: for every subtask the user has asked so far it
issues the reference tool calls one by one, then states the subtask's answer. It locates the
asked subtasks by their ``ask`` text in the user messages, so it works with one-per-turn and
all-at-once users alike.

``NoisyOracle(p)`` fails each subtask independently with probability ``p``, in one of three
ways: a wrong argument (a perturbed id), a skipped call, or a wrong answer. A failed subtask
always fails the judge, and a kept one always passes, so success at length L is (1-p)^L: the
calibration agent for half-life fits.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from toolzoo.core import AskedTracker, Message, Step, Task, ToolCall, ToolSpecView


class OracleAgent:
    """``phrasing`` picks how answers are worded (see :data:`PHRASINGS`): the committed
    ``<answer>`` tag by default, or one of three natural free-text phrasings."""

    __slots__ = ("phrasing", "task", "_asked", "_queue", "_planned", "_pending_text", "_calls", "__dict__")

    def __init__(self, phrasing: str = "tagged") -> None:
        if phrasing not in PHRASINGS:
            raise ValueError(f"unknown phrasing {phrasing!r} (choose from {', '.join(PHRASINGS)})")
        self.phrasing = phrasing
        self.task: Task | None = None
        self._asked: AskedTracker | None = None
        self._queue: list[Step] = []
        self._planned = 0  # subtasks whose steps were queued
        self._pending_text: list[str] = []
        self._calls = 0

    async def start(self, task: Task) -> None:
        self.task = task
        self._asked = AskedTracker(task)  # task.asked_in(messages), reading each message once
        self._queue, self._planned, self._pending_text, self._calls = [], 0, [], 0

    def plan(self, index: int) -> tuple[list[Step], str]:
        """The calls and the final words for subtask ``index`` (the noisy oracle overrides)."""
        sub = self.task.subtasks[index]
        return list(sub.solution), say_answer(sub.answer, sub.ask, self.phrasing)

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        if self.task is None:
            raise RuntimeError("start(task) was not called")
        asked = self._asked.count(messages)
        while self._planned < asked:
            steps, words = self.plan(self._planned)
            self._queue.extend(steps)
            self._pending_text.append(words)
            self._planned += 1
        if self._queue:
            step = self._queue.pop(0)
            self._calls += 1
            return Message(role="assistant", content=None,
                           tool_calls=[ToolCall.make(step.tool, step.args, id=f"call_{self._calls}")])
        text = " ".join(self._pending_text) or "Is there anything else I can help with?"
        self._pending_text = []
        return Message(role="assistant", content=text)


def _spoken(answer: Any) -> str:
    """A value as a person would say it: lists joined with "and", yes/no as words."""
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    if isinstance(answer, (list, tuple)):
        items = [_spoken(a) for a in answer]
        if not items:
            return "none"
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    if isinstance(answer, dict):
        return json.dumps(answer)
    return str(answer)


def _tag_value(answer: Any) -> str:
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    if isinstance(answer, (list, tuple)):
        return ", ".join(_tag_value(a) for a in answer) if answer else "none"
    if isinstance(answer, dict):
        return json.dumps(answer)
    return str(answer)


# How the oracle words an answer: the committed tag, and three natural free-text phrasings
# (each must still score 100%: the fallback accepts honest answers, not hedges).
PHRASINGS = {
    "tagged": lambda v, ask: f"Here is what I found: <answer>{_tag_value(v)}</answer>",
    "plain": lambda v, ask: ("There are none." if v == [] else f"The answer is {_spoken(v)}."),
    "checked": lambda v, ask: ("I checked with the tools and found none." if v == []
                               else f"I checked with the tools: it's {_spoken(v)}."),
    "terse": lambda v, ask: ("None." if v == [] else f"{_spoken(v)}."),
}
NATURAL_PHRASINGS = ("plain", "checked", "terse")


def say_answer(answer: Any, ask: str, phrasing: str = "tagged") -> str:
    if answer is None:
        return "Done."
    return PHRASINGS[phrasing](answer, ask)


def wrong_value(value: Any) -> Any:
    """A value certainly different from ``value`` that still looks plausible."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 1.0
    if isinstance(value, str):
        m = re.search(r"(\d)(?!.*\d)", value)
        if m:  # perturb the last digit: o0008 -> o0009 (another record, likely existing)
            d = (int(m.group(1)) + 1) % 10
            return value[: m.start()] + str(d) + value[m.end():]
        return value[::-1] + "x" if value else "x"
    if isinstance(value, list):
        return value[1:] or ["x"]
    return "unknown"


class NoisyOracleAgent(OracleAgent):
    MODES = ("wrong_argument", "skipped_call", "wrong_answer")

    def __init__(self, p: float, seed: int | str = 0, phrasing: str = "tagged"):
        super().__init__(phrasing)
        if not 0.0 <= p <= 1.0:
            raise ValueError("p must be in [0, 1]")
        self.p = p
        self.seed = seed
        self.failed: list[int] = []
        self.rng = random.Random()

    async def start(self, task: Task) -> None:
        await super().start(task)
        self.rng = random.Random(f"noisy:{task.id}:{self.seed}")
        self.failed = []

    def plan(self, index: int) -> tuple[list[Step], str]:
        steps, words = super().plan(index)
        if self.rng.random() >= self.p:
            return steps, words
        self.failed.append(index)
        sub = self.task.subtasks[index]
        modes = [m for m in self.MODES if m != "wrong_answer" or sub.answer is not None]
        mode = self.rng.choice(modes)
        if mode == "wrong_argument" and any(s.args for s in steps):
            # The wrong entity throughout: every call's first argument is perturbed, so the
            # intended record is never changed, and what is read is another record's value.
            steps = [Step(tool=s.tool, args={**s.args, sorted(s.args)[0]: wrong_value(s.args[sorted(s.args)[0]])})
                     if s.args else s for s in steps]
            if sub.answer is None:
                return steps, words
            return steps, say_answer(wrong_value(sub.answer), sub.ask, self.phrasing)
        if mode == "wrong_answer":
            return steps, say_answer(wrong_value(sub.answer), sub.ask, self.phrasing)
        if sub.answer is None:
            return [], "Sorry, I could not do that."
        return [], say_answer(wrong_value(sub.answer), sub.ask, self.phrasing)


class RandomAgent:
    """Calls random tools with arguments built from ids seen in the conversation."""

    def __init__(self, seed: int | str = 0, max_calls: int = 3):
        self.seed, self.max_calls = seed, max_calls
        self.rng = random.Random(seed)
        self._calls = 0

    async def start(self, task: Task) -> None:
        self.rng = random.Random(f"random:{task.id}:{self.seed}")
        self._calls = 0

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        words = re.findall(r"\b[a-z]+\d+\b", " ".join(m.content or "" for m in messages)) or ["x0"]
        if tools and self._calls < self.max_calls and self.rng.random() < 0.7:
            tool = self.rng.choice(tools)
            args = {name: _random_value(schema, words, self.rng)
                    for name, schema in tool.parameters.get("properties", {}).items()}
            self._calls += 1
            return Message(role="assistant", tool_calls=[ToolCall.make(tool.name, args, id=f"call_r{self._calls}")])
        return Message(role="assistant", content=f"The answer is {self.rng.choice(words)}.")


def _random_value(schema: dict[str, Any], words: list[str], rng: random.Random) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if kind == "integer":
        return rng.randint(0, 100)
    if kind == "number":
        return rng.random() * 100
    if kind == "boolean":
        return rng.random() < 0.5
    return rng.choice(words)
