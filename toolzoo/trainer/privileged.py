"""Privileged information (PI) for π-Distill and OPSD: what the teacher sees and the student
does not, and the two views of one conversation.

The PI is rendered from the task's reference tool-call trace (``task.subtasks[i].solution``)
and appended to the conversation's system message, so it sits before every turn and is the
same for all of them: each turn's prompt then extends the previous turn's prompt + completion
(the prefix property that lets a multi-turn episode be one sequence), and the student view is
the teacher view minus one block of the system turn. Variants:

- ``full_trace``: every reference call with its arguments, in order;
- ``tool_names``: the tool names only, in order;
- ``hint``: a short hint, the first tool to call.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from toolzoo.agents.formats import detect_format
from toolzoo.agents.tokens import render_ids
from toolzoo.core import Message, Task, ToolSpecView
from toolzoo.trainer.data import TokenizedConversation

PrivilegedKind = Literal["full_trace", "tool_names", "hint"]
PI_HEADER = "Privileged reference"


def render_privileged(task: Task, kind: PrivilegedKind = "full_trace") -> str:
    """The PI text for ``task``; calls of all subtasks in order, numbered."""
    steps = [s for sub in task.subtasks for s in sub.solution]
    if kind == "full_trace":
        lines = [f"{i}. {s.tool} {json.dumps(s.args, sort_keys=True)}" for i, s in enumerate(steps, 1)]
        return f"{PI_HEADER} (solution):\n" + "\n".join(lines)
    if kind == "tool_names":
        return f"{PI_HEADER} (tools, in order): " + ", ".join(s.tool for s in steps)
    if kind == "hint":
        return f"{PI_HEADER} (hint): start with {steps[0].tool}." if steps else f"{PI_HEADER} (hint): no tool is needed."
    raise ValueError(f"unknown privileged kind {kind!r}")


def with_privileged(messages: list[Message], text: str | None) -> list[Message]:
    """``messages`` with ``text`` appended to the system message (one is added when missing).
    ``text=None`` returns the messages unchanged (the student view)."""
    if not text:
        return list(messages)
    if messages and messages[0].role == "system":
        first = messages[0]
        body = f"{first.content}\n\n{text}" if first.content else text
        return [first.model_copy(update={"content": body}), *messages[1:]]
    return [Message(role="system", content=text), *messages]


class PrivilegedAgent:
    """Wraps a (shared) policy agent: ``start`` renders the task's PI, ``act`` shows it to the
    inner agent. The episode's own messages never contain the PI; the returned assistant
    messages carry the teacher-view prompt ids in ``Message.tokens``."""

    def __init__(self, inner: Any, kind: PrivilegedKind = "full_trace"):
        self.inner, self.kind = inner, kind
        self.text: str | None = None

    async def start(self, task: Task) -> None:
        self.text = render_privileged(task, self.kind)
        await self.inner.start(task)

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        return await self.inner.act(with_privileged(messages, self.text), tools)


def sequence_in_context(tokenizer, messages: list[Message], tools: list[ToolSpecView] | None,
                        text: str | None) -> TokenizedConversation | None:
    """One token sequence of an episode whose assistant turns carry sampled ids
    (``Message.tokens``), re-rendered in the context with PI ``text`` (None: without): each
    turn's prompt is rendered from the conversation so far, the completion is the sampled ids.
    The assistant-masked tokens are therefore identical in both views; only the prompts differ.
    Returns None when a turn lacks ids (or the template has no end-of-turn token)."""
    ids: list[int] = []
    mask: list[int] = []
    fmt = detect_format(tokenizer)  # how tools and calls reach this template
    eos = tokenizer.eos_token_id
    prev_prompt_len = None  # length of the previous turn's prompt in this view's rendering
    for i, m in enumerate(messages):
        if m.role != "assistant":
            continue
        if m.tokens is None or not m.tokens.completion_ids:
            return None
        prompt = render_ids(tokenizer, fmt, with_privileged(messages[:i], text), tools)
        if prev_prompt_len is None:
            new = prompt
        else:
            # The previous assistant turn as the template re-renders it may differ from what was
            # sampled (a malformed call re-serialised): skip its rendered span, up to its
            # end-of-turn token, and keep only what follows (tool results, user turns).
            try:
                end = prompt.index(eos, prev_prompt_len)
            except ValueError:
                return None
            # a truncated turn (no end-of-turn sampled) was closed by the template in the prompt
            # the policy saw next: keep that end-of-turn token, as context
            new = prompt[end + 1:] if ids[-1] == eos else prompt[end:]
        prev_prompt_len = len(prompt)
        ids += new + list(m.tokens.completion_ids)
        mask += [0] * len(new) + [1] * len(m.tokens.completion_ids)
    if not ids:
        return None
    return TokenizedConversation(input_ids=ids, assistant_mask=mask)
