"""``LLMUser``: a user simulator backed by any OpenAI-compatible endpoint.

The simulator gets a persona and the hidden goal list — each subtask's ``ask`` and the values
bound into it, which it may need to answer the agent's questions — and nothing else of the
task: never the reference solution, the expected answers or the expected final state. It sees
the conversation with roles flipped (the agent's words are its input) and ends the episode by
saying ``###STOP###``.

A reply that breaks its role is flagged in ``UserReply.violation`` so the episode is recorded
as a ``user_sim`` failure rather than an agent failure. Two cheap heuristics:

* it names a tool of the reference solution (``refund_order``): it is solving, not asking;
* it mentions an identifier-like token (``o9999``, ``ORD-123``) that appears nowhere in its
  goals, its persona or what the agent said: it asks for something outside the task.
"""

from __future__ import annotations

import json
import re
from typing import Any

from toolzoo.core import Message, Task, Usage
from toolzoo.envs.user import UserReply, UserSimError
from toolzoo.llm import LLMClient, LLMConfig, LLMError, client_or_own

STOP = "###STOP###"
DEFAULT_PERSONA = "A customer of this service. You write short, natural, polite messages."
KICKOFF = "(The assistant is ready. Write your first message to it.)"

# Identifier-like tokens: letters then (optionally - or _) at least two digits: o0012, ORD-123.
_IDENT = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z]+[-_]?\d{2,}(?![A-Za-z0-9_])")
# Tool names worth matching: identifiers with an underscore or a digit (refund_order). Plain
# words ("search") occur in ordinary speech and would flag innocent replies.
_TOOLISH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[_.][A-Za-z0-9]+)+$|^[A-Za-z]+\d+\w*$")


def _texts(value: Any) -> list[str]:
    """Every scalar inside a bound value, as text."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (str(k), *_texts(v))]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return [] if value is None else [str(value)]


def _idents(text: str) -> set[str]:
    return {m.lower() for m in _IDENT.findall(text)}


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def user_system_prompt(task: Task, persona: str | None = None) -> str:
    """The simulator's system prompt: persona, goals, the values it knows, the rules.
    Built from asks and bindings only; the reference solution never enters it."""
    lines = [
        "You are role-playing a USER who is talking to an AI assistant. The assistant has tools"
        " and does the work; you only state what you want and answer its questions.",
        f"Your persona: {persona or DEFAULT_PERSONA}",
        "",
        # Goals are quoted as written because progress is measured by finding each ask,
        # verbatim, in the user's messages (core.Task.asked_in).
        "Your goals, in this order. Bring them up one at a time, quoting each goal's sentence"
        " exactly as written (you may add a short greeting or remark around it); move on to the"
        " next one once the assistant has handled the current one:",
    ]
    for i, sub in enumerate(task.subtasks, 1):
        lines.append(f"{i}. {sub.ask}")
        if sub.bind:
            known = "; ".join(f"{k} = {_show(v)}" for k, v in sub.bind.items())
            lines.append(f"   (details you know, if the assistant asks: {known})")
    if task.distractors:
        lines += ["", "Things you may mention in passing, as small talk:"]
        lines += [f"- {d}" for d in task.distractors]
    lines += [
        "",
        "Rules:",
        "- Stay the user. Never act as the assistant, never tell it which tools or functions to"
        " call, and never answer your own questions.",
        "- Ask only for what is in your goals. Do not invent other requests, order numbers,"
        " ids or details. If asked for something you do not know, say you do not know.",
        f"- When every goal has been handled (or the assistant clearly cannot help), reply with"
        f" exactly {STOP} and nothing else.",
    ]
    return "\n".join(lines)


def flip_roles(messages: list[Message]) -> list[Message]:
    """The conversation as the simulator sees it: the agent's text becomes its ``user`` input,
    its own earlier messages become ``assistant``; tool traffic and system messages are dropped
    and consecutive same-role turns merged (chat templates want alternation)."""
    out: list[Message] = [Message(role="user", content=KICKOFF)]
    for m in messages:
        if m.role not in ("user", "assistant") or not (m.content or "").strip():
            continue
        role = "assistant" if m.role == "user" else "user"
        if out[-1].role == role:
            out[-1] = Message(role=role, content=f"{out[-1].content}\n\n{m.content}")
        else:
            out.append(Message(role=role, content=m.content))
    return out


class LLMUser:
    """A UserSimulator on an OpenAI-compatible endpoint. Pass ``client`` to share one pooled
    :class:`LLMClient` between many episodes. ``usage`` counts this episode's simulator tokens
    (kept apart from the agent's: user messages carry no ``Message.usage``)."""

    def __init__(self, config: LLMConfig | None = None, persona: str | None = None, *,
                 client: LLMClient | None = None, check_violations: bool = True,
                 empty_retries: int = 1) -> None:
        self.client, self._owns_client = client_or_own(config, client, "LLMUser")
        self.persona = persona
        self.check_violations = check_violations
        self.empty_retries = empty_retries
        self.task: Task | None = None
        self.system_prompt = ""
        self._tool_names: set[str] = set()
        self._known: set[str] = set()
        self.usage = Usage()

    async def start(self, task: Task) -> None:
        self.task = task
        self.usage = Usage()
        self.system_prompt = user_system_prompt(task, self.persona)
        asks = " ".join(s.ask for s in task.subtasks)
        self._tool_names = {step.tool for s in task.subtasks for step in s.solution
                            if _TOOLISH.match(step.tool) and step.tool not in asks}
        known = [asks, self.persona or DEFAULT_PERSONA, *task.distractors]
        known += [t for s in task.subtasks for t in _texts(s.bind)]
        self._known = set().union(*(_idents(t) for t in known))

    async def respond(self, messages: list[Message]) -> UserReply:
        if self.task is None:
            raise UserSimError("LLMUser.respond called before start")
        prompt = [Message(role="system", content=self.system_prompt), *flip_roles(messages)]
        text = ""
        for _ in range(self.empty_retries + 1):
            try:
                result = await self.client.chat(prompt)
            except LLMError as e:
                raise UserSimError(f"user simulator endpoint failed: {type(e).__name__}: {e}") \
                    from e
            self.usage = Usage(
                prompt_tokens=self.usage.prompt_tokens + result.usage.prompt_tokens,
                completion_tokens=self.usage.completion_tokens + result.usage.completion_tokens)
            text = (result.message.content or "").strip()
            if text:
                break
        else:
            raise UserSimError("user simulator returned an empty reply")
        stop = STOP in text
        said = text.replace(STOP, "").strip()
        violation = self.violation(said, messages) if self.check_violations else None
        return UserReply(message=Message(role="user", content=said) if said else None,
                         stop=stop, violation=violation)

    def violation(self, said: str, messages: list[Message]) -> str | None:
        """Why this reply breaks the simulator's role, or None."""
        for tool in sorted(self._tool_names):
            if re.search(rf"(?<![A-Za-z0-9_]){re.escape(tool)}(?![A-Za-z0-9_])", said, re.I):
                return f"user simulator revealed the reference solution (named tool {tool!r})"
        seen = set(self._known)
        for m in messages:  # ids the agent (or the user earlier) already put on the table
            if m.role in ("assistant", "user") and m.content:
                seen |= _idents(m.content)
        unknown = sorted(_idents(said) - seen)
        if unknown:
            return (f"user simulator asked about {', '.join(unknown)}, which is not in its goals"
                    f" or the conversation")
        return None

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
