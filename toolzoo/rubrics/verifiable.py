"""The verifiable judge: final-state and answer checks, with per-subtask progress.

Subtask *i* is complete when (a) every record its reference solution changed is, at the
checkpoint where the agent handed the turn back after subtask *i* was stated, what the
reference leaves there, and (b) the agent answered it in its reply window, by the rules of
:mod:`toolzoo.rubrics.answers` (one ``<answer>`` tag per question judged exactly, or a free-text
reply stating the value and no other candidate). When subtasks were stated together (an
all-at-once user), they share a checkpoint and a reply window; without checkpoints (a
paraphrasing LLM user) the final state and the whole conversation are used. The episode succeeds when every subtask is complete *and* the
final state equals the reference final state exactly (no collateral writes). ``first_failed``
is the first incomplete subtask: the survival datum of the half-life analysis.
"""

from __future__ import annotations

import json
from typing import Any

from toolzoo.core import AskedTracker, Checkpoint, FailureKind, ItemScore, Message, Outcome, Score, Task
from toolzoo.rubrics.answers import Question, Vocabulary, judge_window, vocabulary
from toolzoo.tools.state import state_hash


def agent_text(messages: list[Message]) -> str:
    return "\n".join(m.content for m in messages if m.role == "assistant" and m.content)


def agent_replies(messages: list[Message]) -> list[str]:
    """The agent's messages that handed the turn back (no tool calls): what it told the user."""
    return [m.content for m in messages if m.role == "assistant" and m.content and not m.tool_calls]


def tool_results(messages: list[Message]) -> list[tuple[str, Any]]:
    """(tool name, parsed result) of every tool message that holds JSON: rivals the agent saw."""
    out = []
    for m in messages:
        if m.role == "tool" and m.content:
            try:
                out.append((m.name or "", json.loads(m.content)))
            except ValueError:
                continue
    return out


def _first_stated(task: Task, messages: list[Message]) -> list[int]:
    """Per subtask, the index of the user message by which it had been stated (0 when never:
    the asks were paraphrased), from one pass over growing prefixes of the user messages."""
    out = [0] * len(task.subtasks)
    done = 0
    tracker = AskedTracker(task)  # task.asked_in(messages[: j + 1]), one message at a time
    for j, m in enumerate(messages):
        if m.role != "user" or done == len(out):
            continue
        asked = tracker.feed(m.content)
        for i in range(done, min(asked, len(out))):
            out[i] = j
        done = max(done, asked)
    return out


def _window(task: Task, messages: list[Message], checkpoints: list[Checkpoint],
            i: int, stated: list[int]) -> tuple[int, int, dict, int, bool]:
    """(start, end) of the messages replying to subtask i, records to compare, index of the
    last subtask covered, whether a checkpoint covers it."""
    cp = next((c for c in reversed(checkpoints) if c.asked == i + 1), None)
    if cp is None:
        cp = next((c for c in checkpoints if c.asked > i + 1), None)
    end = cp.message_index if cp is not None else len(messages)
    start = stated[i] if stated[i] < end else 0  # the user message that stated it
    if cp is None:  # no checkpoint covers it: the end of the episode does
        return start, end, {}, len(task.subtasks) - 1, False
    return start, end, cp.records, cp.asked - 1, True


def _answers(task: Task, messages: list[Message], windows: list[tuple[int, int]],
             vocab: Vocabulary) -> list[tuple[bool, str]]:
    """Per subtask, (answered, reason): subtasks sharing a reply window are judged together."""
    out: list[tuple[bool, str]] = [(True, "ok")] * len(task.subtasks)
    members_of: dict[tuple[int, int], list[int]] = {}
    for i, span in enumerate(windows):
        members_of.setdefault(span, []).append(i)
    for (start, end), members in members_of.items():
        texts, replies = [], []  # every agent text of the window; those that handed the turn back
        for m in messages[start:end]:
            if m.role == "assistant" and m.content:
                texts.append(m.content)
                if not m.tool_calls:
                    replies.append(m.content)
        verdicts = judge_window([Question(task.subtasks[i].answer) for i in members], texts, replies, vocab)
        for i, verdict in zip(members, verdicts):
            out[i] = verdict
    return out


def _expected_at(task: Task, coll: str, key: str, upto: int) -> Any:
    """The reference value of a record after subtask ``upto``: the last subtask that touched it."""
    for sub in reversed(task.subtasks[: upto + 1]):
        if key in sub.expected.get(coll, {}):
            return sub.expected[coll][key]
    return None


def judge_verifiable(task: Task, messages: list[Message], final_state: dict[str, dict[str, Any]],
                     checkpoints: list[Checkpoint] | None = None, final_hash: str | None = None) -> tuple[Score, Outcome]:
    """``final_hash``: ``state_hash(final_state)`` when the caller has it already."""
    checkpoints = checkpoints or []
    items: list[ItemScore] = []
    first_failed: int | None = None
    stated = _first_stated(task, messages)
    spans = [_window(task, messages, checkpoints, i, stated) for i in range(len(task.subtasks))]
    # the tool results are parsed only if a free-text answer needs the rival groups
    vocab = vocabulary([final_state, task.expected_final], task.domain, lambda: tool_results(messages))
    answers = _answers(task, messages, [(a, b) for a, b, *_ in spans], vocab)
    for i, sub in enumerate(task.subtasks):
        _, _, records, upto, cp_found = spans[i]
        wrong = []
        for coll, keys in sub.touched.items():
            for key in keys:
                if cp_found:
                    actual, expected = records.get(coll, {}).get(key), _expected_at(task, coll, key, upto)
                else:
                    actual, expected = final_state.get(coll, {}).get(key), task.expected_final.get(coll, {}).get(key)
                if actual != expected:
                    wrong.append(f"{coll}[{key}]")
        answered, why = answers[i]
        passed = not wrong and answered
        reason = "ok" if passed else "; ".join(
            ([f"records not as expected: {', '.join(wrong)}"] if wrong else []) + ([why] if not answered else []))
        items.append(ItemScore(id=f"subtask_{i}:{sub.template}", passed=passed, value=float(passed), reason=reason))
        if not passed and first_failed is None:
            first_failed = i
    exact = (final_hash or state_hash(final_state)) == task.expected_final_hash
    items.append(ItemScore(id="final_state_exact", passed=exact, value=float(exact),
                           reason="ok" if exact else "final state differs from the reference final state"))
    completed = first_failed if first_failed is not None else len(task.subtasks)
    success = first_failed is None and exact
    reason = "" if success else (items[first_failed].reason if first_failed is not None else items[-1].reason)
    score = Score(value=float(success), items=items, reasons=[reason] if reason else [])
    outcome = Outcome(success=success, reward=float(success), failure=None if success else FailureKind.AGENT,
                      reason=reason,
                      subtasks_completed=completed, first_failed=first_failed)
    return score, outcome
