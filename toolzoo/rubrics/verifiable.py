"""The verifiable judge: final-state and answer checks, with per-subtask progress.

Subtask *i* is complete when (a) every record its reference solution changed is, at the
checkpoint where the agent handed the turn back after subtask *i* was stated, what the
reference leaves there, and (b) its expected answer appears in what the agent said in reply
to it. When subtasks were stated together (an all-at-once user), they share a checkpoint
and a reply window; without checkpoints (a paraphrasing LLM user) the final state and the
whole conversation are used. The episode succeeds when every subtask is complete *and* the
final state equals the reference final state exactly (no collateral writes). ``first_failed``
is the first incomplete subtask: the survival datum of the half-life analysis.
"""

from __future__ import annotations

from typing import Any

from toolzoo.core import Checkpoint, ItemScore, Message, Outcome, Score, Task
from toolzoo.rubrics.answers import answer_present
from toolzoo.tools.state import state_hash


def agent_text(messages: list[Message]) -> str:
    return "\n".join(m.content for m in messages if m.role == "assistant" and m.content)


def _window(task: Task, messages: list[Message], checkpoints: list[Checkpoint], i: int) -> tuple[str, dict, int, bool]:
    """(agent text replying to subtask i, records to compare, index of the last subtask covered)."""
    cp = next((c for c in reversed(checkpoints) if c.asked == i + 1), None)
    if cp is None:
        cp = next((c for c in checkpoints if c.asked > i + 1), None)
    if cp is None:  # no checkpoint covers it: the end of the episode does
        return agent_text(messages), {}, len(task.subtasks) - 1, False
    start = 0
    for j, m in enumerate(messages[: cp.message_index]):
        if m.role == "user" and task.asked_in(messages[: j + 1]) >= i + 1:
            start = j
            break
    return agent_text(messages[start: cp.message_index]), cp.records, cp.asked - 1, True


def _expected_at(task: Task, coll: str, key: str, upto: int) -> Any:
    """The reference value of a record after subtask ``upto``: the last subtask that touched it."""
    for sub in reversed(task.subtasks[: upto + 1]):
        if key in sub.expected.get(coll, {}):
            return sub.expected[coll][key]
    return None


def judge_verifiable(task: Task, messages: list[Message], final_state: dict[str, dict[str, Any]],
                     checkpoints: list[Checkpoint] | None = None) -> tuple[Score, Outcome]:
    checkpoints = checkpoints or []
    items: list[ItemScore] = []
    first_failed: int | None = None
    for i, sub in enumerate(task.subtasks):
        text, records, upto, cp_found = _window(task, messages, checkpoints, i)
        wrong = []
        for coll, keys in sub.touched.items():
            for key in keys:
                if cp_found:
                    actual, expected = records.get(coll, {}).get(key), _expected_at(task, coll, key, upto)
                else:
                    actual, expected = final_state.get(coll, {}).get(key), task.expected_final.get(coll, {}).get(key)
                if actual != expected:
                    wrong.append(f"{coll}[{key}]")
        answered = answer_present(sub.answer, text)
        passed = not wrong and answered
        reason = "ok" if passed else "; ".join(
            ([f"records not as expected: {', '.join(wrong)}"] if wrong else [])
            + ([f"expected answer {sub.answer!r} not stated"] if not answered else []))
        items.append(ItemScore(id=f"subtask_{i}:{sub.template}", passed=passed, value=float(passed), reason=reason))
        if not passed and first_failed is None:
            first_failed = i
    exact = state_hash(final_state) == task.expected_final_hash
    items.append(ItemScore(id="final_state_exact", passed=exact, value=float(exact),
                           reason="ok" if exact else "final state differs from the reference final state"))
    completed = first_failed if first_failed is not None else len(task.subtasks)
    success = first_failed is None and exact
    reason = "" if success else (items[first_failed].reason if first_failed is not None else items[-1].reason)
    score = Score(value=float(success), items=items, reasons=[reason] if reason else [])
    outcome = Outcome(success=success, reward=float(success), failure=None if success else "agent", reason=reason,
                      subtasks_completed=completed, first_failed=first_failed)
    return score, outcome
