"""The shared data model: messages, tool calls, tasks, trajectories, outcomes and scores.

Everything that crosses a module boundary is one of these pydantic models. Messages use the
OpenAI chat format exactly (``tool_calls[].function.arguments`` is a JSON *string*), so a
message list can be sent to any OpenAI-compatible endpoint unchanged and round-trips losslessly.
"""

from __future__ import annotations

import json
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class FailureKind(StrEnum):
    """Who an unsuccessful episode is blamed on. Stored as the plain string (old run folders
    load unchanged); compare with the members or the predicates below, never with literals.

    * ``agent``: the policy was judged and fell short: the only failure a success rate counts.
    * ``infra``: the sandbox, a tool server, an endpoint (after retries) or the harness's own
      waiting ran out: says nothing about the policy.
    * ``user_sim``: the user simulator failed or broke its role.
    * ``judge``: a judge could not decide: excluded, whatever the verifiable check said.
    * ``harness``: an unexpected exception in toolzoo itself (the traceback is in ``reason``).
    """

    AGENT = "agent"
    INFRA = "infra"
    USER_SIM = "user_sim"
    JUDGE = "judge"
    HARNESS = "harness"


class InfraError(Exception):
    """Raised by harness components (an endpoint behind a simulated tool, a sandbox) when the
    failure is the infrastructure's: the episode driver makes it an ``infra`` outcome, never
    an agent-visible tool error."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionCall(_Model):
    name: str
    arguments: str = "{}"  # raw JSON text, as the model produced it (may be malformed)


# json.dumps(value, sort_keys=True) with the encoder built once (dumps builds one per call
# whenever an option is given)
_ARGS_JSON = json.JSONEncoder(sort_keys=True).encode


class ToolCall(_Model):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall

    @classmethod
    def make(cls, name: str, args: dict[str, Any] | None = None, id: str | None = None) -> ToolCall:
        return cls(
            id=id or f"call_{uuid.uuid4().hex[:12]}",
            function=FunctionCall(name=name, arguments=_ARGS_JSON(args or {})),
        )

    @property
    def name(self) -> str:
        return self.function.name

    def parsed_args(self) -> dict[str, Any]:
        """The arguments as an object; raises ``ValueError`` when they are not a JSON object."""
        value = json.loads(self.function.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
        return value


class TokenInfo(_Model):
    """What a trainable policy produced for one assistant message (never sent to endpoints)."""

    prompt_ids: list[int] = Field(default_factory=list)
    completion_ids: list[int] = Field(default_factory=list)
    logprobs: list[float] = Field(default_factory=list)


class Usage(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Message(_Model):
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    tokens: TokenInfo | None = None
    usage: Usage | None = None
    # assistant: tool calls it wrote that did not parse (each became a call answered with a tool
    # error); None when the agent does not parse text (scripted, endpoint-parsed)
    parse_errors: int | None = None

    def to_openai(self) -> dict[str, Any]:
        """The message as an OpenAI chat-completions request expects it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


class ToolResult(_Model):
    """One tool call's answer, MCP-shaped: text content, optional structured content, error flag."""

    call_id: str = ""
    name: str
    content: str
    structured: Any = None
    is_error: bool = False


class ToolSpecView(_Model):
    """A tool as agents see it (name, description, JSON Schema of its arguments)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        return {"type": "function", "function": self.model_dump()}


class Step(_Model):
    """One reference tool call in a task's solution trace."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class SubtaskInstance(_Model):
    """One goal template instantiated against the state it will run in."""

    template: str
    bind: dict[str, Any] = Field(default_factory=dict)
    ask: str
    solution: list[Step] = Field(default_factory=list)
    answer: Any = None  # what the agent must say, when the template asks a question
    checkpoint_hash: str = ""  # canonical state hash after this subtask's reference solution
    touched: dict[str, list[str]] = Field(default_factory=dict)  # records its solution changed
    expected: dict[str, dict[str, Any]] = Field(default_factory=dict)  # those records after it (None: deleted)


class Task(_Model):
    id: str
    domain: str
    seed: int
    length: int
    subtasks: list[SubtaskInstance]
    initial_hash: str = ""
    expected_final_hash: str = ""
    # Collections and keys any subtask's reference solution changed: what the final-state check
    # compares. ``expected_final`` holds those records as the reference leaves them (None: deleted).
    touched: dict[str, list[str]] = Field(default_factory=dict)
    expected_final: dict[str, dict[str, Any]] = Field(default_factory=dict)
    system_prompt: str | None = None
    distractors: list[str] = Field(default_factory=list)

    @property
    def answers(self) -> list[Any]:
        return [s.answer for s in self.subtasks]

    def asked_in(self, messages: list[Message]) -> int:
        """How many subtasks, in order, the user messages have stated verbatim so far."""
        text = "\n".join(m.content or "" for m in messages if m.role == "user")
        n, pos = 0, 0
        for sub in self.subtasks:
            found = text.find(sub.ask, pos)
            if found < 0:
                break
            n, pos = n + 1, found + len(sub.ask)
        return n


class AskedTracker:
    """``task.asked_in(messages)`` for a message list that only grows, reading each message
    once: the search resumes where it stopped (a subtask found in a prefix of the user text is
    found at the same place in any longer text, so the count is exactly ``asked_in``'s). A list
    that is not the one seen before, or whose last seen message was replaced, is read afresh."""

    __slots__ = ("task", "_messages", "_seen", "_last", "_text", "_n", "_pos", "_users")

    def __init__(self, task: Task):
        self.task = task
        self._reset(None)

    def _reset(self, messages: list[Message] | None) -> None:
        self._messages, self._seen, self._last = messages, 0, None
        self._text, self._n, self._pos, self._users = "", 0, 0, 0

    def count(self, messages: list[Message]) -> int:
        seen = self._seen
        if messages is not self._messages or len(messages) < seen or (seen and messages[seen - 1] is not self._last):
            self._reset(messages)
            seen = 0
        end = len(messages)
        if end == seen:
            return self._n
        for m in messages[seen:] if seen else messages:
            if m.role == "user":
                self.feed(m.content)
        self._seen, self._last = end, messages[end - 1]
        return self._n

    def feed(self, content: str | None) -> int:
        """Read one more user message; the count so far."""
        content = content or ""
        self._text = self._text + "\n" + content if self._users else content
        self._users += 1
        subtasks, text, n, pos = self.task.subtasks, self._text, self._n, self._pos
        while n < len(subtasks):
            ask = subtasks[n].ask
            found = text.find(ask, pos)
            if found < 0:
                break
            n, pos = n + 1, found + len(ask)
        self._n, self._pos = n, pos
        return n


class ItemScore(_Model):
    id: str
    passed: bool | None = None  # None: could not be decided
    value: float = 0.0
    weight: float = 1.0
    reason: str = ""
    evidence: str = ""


class Score(_Model):
    value: float
    items: list[ItemScore] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class Outcome(_Model):
    """An episode's verdict. Frozen: judges and scorers return a new one (``model_copy``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    success: bool
    reward: float = 0.0
    failure: FailureKind | None = None  # None when success; otherwise who failed
    reason: str = ""
    subtasks_completed: int = 0  # how many subtasks, in order, were done before the first failure
    first_failed: int | None = None  # 0-based index of the first failed subtask; None if none failed

    # -- constructors: the one way each kind is built -------------------------------------------
    @classmethod
    def failed(cls, kind: FailureKind | str, reason: str = "", **fields: Any) -> Outcome:
        """A failure of ``kind`` (never a success, reward 0 unless given)."""
        return cls(success=False, failure=FailureKind(kind), reason=reason, **fields)

    @classmethod
    def infra(cls, reason: str) -> Outcome:
        return cls.failed(FailureKind.INFRA, reason)

    @classmethod
    def user_sim(cls, reason: str) -> Outcome:
        return cls.failed(FailureKind.USER_SIM, reason)

    @classmethod
    def judge_failed(cls, reason: str, verifiable: Outcome | None = None) -> Outcome:
        """A judge could not decide. ``success`` and the subtask counts keep the verifiable
        verdict for the record, but ``counts_for_rate`` excludes the episode whatever that
        verdict was: no path can half-count it."""
        kept = {"success": verifiable.success, "reward": verifiable.reward,
                "subtasks_completed": verifiable.subtasks_completed,
                "first_failed": verifiable.first_failed} if verifiable is not None else {"success": False}
        return cls(failure=FailureKind.JUDGE, reason=reason, **kept)

    @classmethod
    def harness(cls, reason: str) -> Outcome:
        return cls.failed(FailureKind.HARNESS, reason)

    # -- predicates: the one counting rule ------------------------------------------------------
    @property
    def judged(self) -> bool:
        """The agent's own verdict: a success or an ``agent`` failure."""
        return self.failure is None or self.failure == FailureKind.AGENT

    @property
    def retryable(self) -> bool:
        """``infra`` and ``harness`` failures: re-running the episode may give a verdict."""
        return self.failure in (FailureKind.INFRA, FailureKind.HARNESS)


def counts_for_rate(outcome: Outcome | None) -> bool:
    """Whether an episode enters success rates, pass^k and half-lives (numerator and
    denominator alike): only judged episodes, i.e. successes and ``agent`` failures. A missing
    outcome, ``infra``, ``user_sim``, ``judge`` and ``harness`` are excluded, whatever
    ``success`` says. Every counting path (runner summary, Ray, analysis) uses this."""
    return outcome is not None and outcome.judged


def counts_for_policy(outcome: Outcome | None) -> bool:
    """Whether an episode's reward may train a policy: the same judged set as rates (a reward
    from a broken episode, a failed judge or a harness bug teaches the policy noise)."""
    return counts_for_rate(outcome)


def is_success(outcome: Outcome | None) -> bool:
    """A counted success (``counts_for_rate`` and ``success``)."""
    return counts_for_rate(outcome) and bool(outcome.success)  # type: ignore[union-attr]


def failure_kind(outcome: Outcome | None) -> FailureKind | None:
    """The kind, with a missing outcome read as ``infra`` (the episode never finished)."""
    return FailureKind.INFRA if outcome is None else outcome.failure


class CallRecord(_Model):
    """One tool call the agent made, as judges see it (``error`` is None on success)."""

    name: str
    args: Any = None
    error: str | None = None
    result: Any = None


class Checkpoint(_Model):
    """The task's records as the agent left them when it handed the turn back to the user."""

    asked: int  # subtasks stated so far
    message_index: int  # len(messages) when taken
    records: dict[str, dict[str, Any]] = Field(default_factory=dict)  # task-touched records only


class Timing(_Model):
    """Where an episode's wall time went. ``agent_s`` is what the episode's limits apply to;
    ``harness_s`` is time the harness spent on itself (sandbox lease, endpoint retries and
    backoff, a simulated tool's endpoint), broken down by cause in ``harness``."""

    agent_s: float = 0.0
    harness_s: float = 0.0
    lease_s: float = 0.0  # getting the sandbox (pool lease or cold start); part of harness_s
    harness: dict[str, float] = Field(default_factory=dict)


class Trajectory(_Model):
    episode_id: str
    task: Task
    trial: int = 0
    messages: list[Message] = Field(default_factory=list)
    calls: list[CallRecord] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    final_hash: str = ""
    final_state: dict[str, dict[str, Any]] | None = None
    outcome: Outcome | None = None
    scores: dict[str, Score] = Field(default_factory=dict)
    attempts: int = 1  # infra retries included
    seconds: float = 0.0
    timing: Timing = Field(default_factory=Timing)
    usage: Usage = Field(default_factory=Usage)
    meta: dict[str, Any] = Field(default_factory=dict)
