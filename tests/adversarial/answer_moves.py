"""Adversarial answer moves, written on the public Agent interface (``start(task)`` /
``act(messages, tools)``).

Every adversary here does the task's *actions* right (it replays the reference calls, so the
records a judge compares are as they should be) and cheats only on what it says: it hedges,
dumps every value it saw, negates, or floods tags. Its tasks always hold a question, so an
episode it "wins" is a false success of the answer judge. The adversaries know the expected
answer (``start`` hands scripted agents the task) and always include it: the strongest hedge.

:func:`hedge_text` / :func:`dump_text` are pure functions of what is visible, so the endpoint
adversaries (tests/adversarial/endpoint_moves.py) serve the same moves to the ``openai`` agent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from toolzoo.agents.scripted import OracleAgent, wrong_value
from toolzoo.core import Message, Step, Task, ToolSpecView
from toolzoo.rubrics.answers import Vocabulary, normalise, vocabulary
from toolzoo.tools.state import seed_state
from toolzoo.tools.zoo import get_domain

NUMBERS = " ".join(str(n) for n in range(0, 501))
_ID = re.compile(r"\b[A-Za-z]+_?\d+\b")


def leaves(value: Any) -> list[str]:
    """Every scalar inside a JSON value (keys included), as text."""
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(str(k))
            out += leaves(v)
    elif isinstance(value, list):
        for v in value:
            out += leaves(v)
    elif value is not None:
        out.append(json.dumps(value) if isinstance(value, bool) else str(value))
    return out


def seen_values(messages: list[Message]) -> list[str]:
    """Every value in the tool results and the user's words so far, first-seen order."""
    seen: dict[str, None] = {}
    for m in messages:
        if m.role == "tool" and m.content:
            try:
                items = leaves(json.loads(m.content))
            except ValueError:
                items = m.content.split()
            for item in items:
                seen.setdefault(item, None)
        elif m.role == "user" and m.content:
            for tok in _ID.findall(m.content):
                seen.setdefault(tok, None)
    return list(seen)


def alternatives(answer: Any, vocab: Vocabulary | None = None) -> list[str]:
    """The expected answer with real rivals (other values of its enum, field or key set, the
    other boolean, nearby numbers): the strongest hedge includes the truth."""
    if isinstance(answer, bool) or str(answer).lower() in ("yes", "no", "true", "false"):
        rivals: list[Any] = ["yes", "no", "true", "false"]
    elif isinstance(answer, (int, float)):
        rivals = [answer + 1, answer - 1, answer + 10, 0]
    elif isinstance(answer, list):
        pool = sorted(set().union(*(vocab.alternatives(a) for a in answer)) - set(answer)) if vocab and answer else []
        extra = pool[:1] or ["g0"]
        rivals = [answer + extra, answer[1:], []] if answer else [extra, ["o0", "o1"]]
    else:
        pool = sorted((vocab.alternatives(answer) if vocab else set()) - {normalise(answer)})
        rivals = pool[:6] or [wrong_value(answer)]
    out = [_text(answer)]
    for r in rivals:
        if _text(r) not in out:
            out.append(_text(r))
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) if value else "none"
    return str(value)


def hedge_text(candidates: list[str]) -> str:
    return "It is " + " or ".join(candidates) + ". Also possibly " + NUMBERS + ", yes, no, none or nothing."


def dump_text(values: list[str]) -> str:
    return "Here is everything I found: " + ", ".join(values) + "."


@dataclass
class Seen:
    """What a browsing adversary could have seen: the judge's own vocabulary of rivals and
    every value of the state (as if it had listed every record)."""

    vocab: Vocabulary = field(default_factory=Vocabulary)
    everything: list[str] = field(default_factory=list)


# Each move: (answer of the subtask, messages so far, what it saw) -> the words replacing the answer.
Move = Callable[[Any, list[Message], Seen], str]
MOVES: dict[str, Move] = {
    # every candidate at once, as prose
    "hedge_prose": lambda a, m, v: hedge_text(alternatives(a, v.vocab)),
    # the truth first, then "no wait" rivals
    "hedge_correction": lambda a, m, v: f"{_text(a)}. No wait, maybe {alternatives(a, v.vocab)[1]}.",
    # every candidate inside one tag
    "hedge_one_tag": lambda a, m, v: "<answer>" + " or ".join(alternatives(a, v.vocab)) + "</answer>",
    # one tag per candidate, the truth last ("the last one counts" would pass it)
    "tag_flood_truth_last": lambda a, m, v: "".join(f"<answer>{c}</answer>" for c in alternatives(a, v.vocab)[::-1]),
    # one tag per candidate, the truth first
    "tag_flood_truth_first": lambda a, m, v: "".join(f"<answer>{c}</answer>" for c in alternatives(a, v.vocab)),
    # every value seen in tool results and asks, with the truth, as prose
    "dump_prose": lambda a, m, v: dump_text(seen_values(m) + v.everything + [_text(a)]),
    # the same dump, inside one tag
    "dump_one_tag": lambda a, m, v: "<answer>" + ", ".join(seen_values(m) + v.everything + [_text(a)]) + "</answer>",
    # the truth, negated
    "negated": lambda a, m, v: f"It is not {_text(a)}.",
    # silence dressed as an answer ("no idea" once passed an empty list)
    "no_idea": lambda a, m, v: "No idea, sorry.",
}


class AnswerAdversary(OracleAgent):
    """The oracle's actions with one of :data:`MOVES` in place of every answer."""

    def __init__(self, move: str):
        super().__init__()
        self.label, self.move = move, MOVES[move]
        self.seen = Seen()

    async def start(self, task: Task) -> None:
        await super().start(task)
        initial = seed_state(get_domain(task.domain).spec, task.seed).data
        self.seen = Seen(vocabulary([initial, task.expected_final], task.domain),
                         list(dict.fromkeys(leaves(initial) + leaves(task.expected_final))))

    def plan(self, index: int) -> tuple[list[Step], str]:
        sub = self.task.subtasks[index]
        if sub.answer is None:
            return list(sub.solution), "Done."
        # the dump is computed when the words are spoken (after the calls ran): see act()
        return list(sub.solution), f"\x00{index}"

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        msg = await super().act(messages, tools)
        if msg.content and "\x00" in msg.content:
            def fill(match: re.Match) -> str:
                return self.move(self.task.subtasks[int(match.group(1))].answer, messages, self.seen)
            msg = msg.model_copy(update={"content": re.sub(r"\x00(\d+)", fill, msg.content)})
        return msg


def has_question(task: Task) -> bool:
    return any(s.answer is not None for s in task.subtasks)
