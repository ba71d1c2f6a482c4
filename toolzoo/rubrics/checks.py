"""Verifiable rubric items: CEL ``check`` expressions over one finished trajectory.

Variables: ``final`` (final state), ``initial`` (initial state), ``task`` (``id``, ``domain``,
``length``, ``bind`` — each subtask's bindings, ``answers``, ``asks``, ``templates``,
``solution`` — each subtask's reference calls ``{tool, args}``, ``touched`` and
``expected_final``), ``calls`` (each ``{name, args, error, result}``, ``error`` null on success)
and ``messages`` (``{role, content, tool_calls: [{name, arguments}]}``, content "" when empty).
Functions beyond CEL's standard library: ``said(value)`` — ``value`` is one of the agent's
committed answers (an ``<answer>`` tag judged exactly; without tags, its replies state it and
no candidate beyond the task's answers: :func:`toolzoo.rubrics.answers.said_in`) and ``pick``.

Unlike tool effects (hot path, see :mod:`toolzoo.tools.cel`), checks run once per trajectory,
so every variable is registered on one plain ``cel.Context`` (converted once) and expressions
are compiled as written, without the free-name rewrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import cel

from toolzoo.core import ItemScore, Task, Trajectory
from toolzoo.rubrics.answers import said_in, vocabulary
from toolzoo.rubrics.verifiable import agent_replies
from toolzoo.tools.cel import CelError
from toolzoo.tools.state import CEL_FUNCTIONS

CHECK_VARIABLES = ("final", "initial", "task", "calls", "messages")
CHECK_FUNCTIONS = ("said", *CEL_FUNCTIONS)
# CEL's standard global functions (methods such as .contains() are called after a dot).
_CEL_GLOBALS = {"size", "int", "uint", "double", "string", "bytes", "bool", "type", "dyn", "has",
                "duration", "timestamp", "matches", "exists", "all", "exists_one", "map", "filter",
                "min", "max"}
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NAME = re.compile(r"(?<![.\w])([A-Za-z_][A-Za-z0-9_]*)(\s*\()?")
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_LITERALS = {"true", "false", "null", "in", "int", "uint", "double", "string", "bytes", "bool", "list", "map",
             "null_type", "type", "dyn"}


def _clean(message: str) -> str:
    return " ".join(message.replace("<input>", "").split())


def _names(source: str) -> tuple[set[str], set[str]]:
    """(free variables, called global functions) of an expression, outside string literals.
    Own scan rather than the tool layer's rewrite: checks are compiled as written."""
    text = _STRINGS.sub("''", source)
    bound = set(_MACRO_VAR.findall(text))
    free, called = set(), set()
    for m in _NAME.finditer(text):
        name = m.group(1)
        if m.group(2):
            called.add(name)
        elif name not in _LITERALS and name not in bound and not name[0].isdigit():
            free.add(name)
    return free, called


@dataclass(frozen=True)
class Check:
    source: str
    program: Any


def compile_check(source: Any) -> Check:
    """Compile a check; CelError on bad syntax, unknown variables or unknown functions."""
    if not isinstance(source, str) or not source.strip():
        raise CelError("a check must be a non-empty CEL expression (text)")
    try:
        program = cel.compile(source)
    except Exception as exc:  # the library raises ValueError with the parser's message
        raise CelError(_clean(str(exc))) from None
    free, called = _names(source)
    unknown = sorted(free - set(CHECK_VARIABLES))
    if unknown:
        raise CelError(f"unknown variable(s) {', '.join(unknown)} (checks see: {', '.join(CHECK_VARIABLES)})")
    called -= _CEL_GLOBALS | set(CHECK_FUNCTIONS)
    if called:
        raise CelError(f"unknown function(s) {', '.join(sorted(called))} "
                       f"(beyond CEL's standard library: {', '.join(CHECK_FUNCTIONS)})")
    return Check(source, program)


def task_view(task: Task) -> dict[str, Any]:
    return {
        "id": task.id, "domain": task.domain, "seed": task.seed, "length": task.length,
        "bind": [s.bind for s in task.subtasks], "answers": task.answers,
        "asks": [s.ask for s in task.subtasks], "templates": [s.template for s in task.subtasks],
        "solution": [[{"tool": st.tool, "args": st.args} for st in s.solution] for s in task.subtasks],
        "touched": task.touched, "expected_final": task.expected_final,
    }


def trajectory_view(traj: Trajectory) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    calls = [{"name": c.name, "args": c.args, "error": c.error, "result": c.result} for c in traj.calls]
    messages = [{"role": m.role, "content": m.content or "",
                 "tool_calls": [{"name": c.function.name, "arguments": c.function.arguments}
                                for c in (m.tool_calls or [])]} for m in traj.messages]
    return calls, messages


def check_context(task: Task, traj: Trajectory, initial: dict[str, Any],
                  final: dict[str, Any] | None) -> cel.Context:
    calls, messages = trajectory_view(traj)
    texts = [m.content for m in traj.messages if m.role == "assistant" and m.content]
    replies = agent_replies(traj.messages)
    vocab = vocabulary([final, initial, task.expected_final], task.domain,
                       [(c.name, c.result) for c in traj.calls if c.error is None])

    def said(value: Any) -> bool:
        return said_in(value, texts, replies, answers=task.answers, vocab=vocab)

    functions: dict[str, Callable[..., Any]] = {**CEL_FUNCTIONS, "said": said}
    ctx = cel.Context()
    for name, value in {"final": final or {}, "initial": initial, "task": task_view(task),
                        "calls": calls, "messages": messages}.items():
        ctx.add_variable(name, value)
    for name, fn in functions.items():
        ctx.add_function(name, fn)
    return ctx


def run_check(check: Check, ctx: cel.Context) -> tuple[bool, str]:
    """(passed, reason). A check that errors or is not a bool fails, with the reason why: a
    record the agent deleted makes ``final.c[k]`` error, which is a failure of the item."""
    try:
        value = check.program.execute(ctx)
    except Exception as exc:  # noqa: BLE001 - the library raises several types
        return False, f"check could not be evaluated: {_clean(str(exc))}"
    if not isinstance(value, bool):
        return False, f"check returned {value!r}, not a bool"
    return value, "check passed" if value else "check failed"


def run_checks(checks: dict[str, Check], weights: dict[str, float], ctx: cel.Context) -> list[ItemScore]:
    out = []
    for item_id, check in checks.items():
        passed, why = run_check(check, ctx)
        out.append(ItemScore(id=item_id, passed=passed, value=float(passed), weight=weights[item_id],
                             reason=f"check: {why}"))
    return out
