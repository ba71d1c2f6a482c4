"""The episode's turn step machine: user opens, agent acts, tools run, the scorer judges.

:class:`EpisodeSteps` holds one episode's state and exposes its steps — ``start``,
``user_turn``, ``agent_turn``, ``finish`` — so every driver runs the same code:
:func:`run_episode` loops them with an :class:`~toolzoo.agents.base.Agent` (the runner, the
trainer's rollouts and the Ray actors all come through here via :mod:`toolzoo.envs.driver`),
and the gymnasium env calls them one action at a time.

Tool calls go through a :class:`~toolzoo.tools.session.ToolSession`; several calls in one
assistant turn run concurrently. Agent mistakes (bad JSON arguments, unknown tools, failing
calls) come back to the agent as tool errors. Failures are attributed with the
:class:`~toolzoo.core.FailureKind` constructors: ``infra`` (tool server gone, endpoint
unreachable after retries, a simulated tool's endpoint down, a harness wait outliving the
limits), ``user_sim`` (the simulator failed or broke its role). Limits on turns, tool calls
and *agent* time (:mod:`toolzoo.clock`: harness waits are not the agent's) end the episode,
which is then judged as it stands.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from pydantic import BaseModel, Field

from toolzoo.agents.base import Agent, AgentError
from toolzoo.agents.toolcall_check import validate_tool_call
from toolzoo.clock import EpisodeClock, use_clock
from toolzoo.core import (
    AskedTracker,
    CallRecord,
    Checkpoint,
    InfraError,
    Message,
    Outcome,
    Task,
    ToolCall,
    ToolResult,
    Timing,
    ToolSpecView,
    Trajectory,
    Usage,
)
from toolzoo.envs.user import UserSimError, UserSimulator
from toolzoo.tools.session import SessionClosed, ToolSession
from toolzoo.tools.state import json_loads, state_hash
from toolzoo.tools.validation import non_finite_problem

DEFAULT_SYSTEM = (
    "You are a careful assistant with access to tools for the {domain} domain. Use the tools to do "
    "what the user asks. When a request asks for information, state the answer plainly in your reply."
)


class Limits(BaseModel):
    max_turns: int = 64  # assistant messages
    max_tool_calls: int = 128
    wall_time_s: float = Field(300.0, description="the agent's time (harness waits excluded, see toolzoo.clock)")
    harness_time_s: float = Field(900.0, description="harness waits in one episode before it is ended as infra")


class EpisodeEnded(Exception):
    """A step ended the episode with a verdict-less outcome (infra, user_sim)."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.reason)
        self.outcome = outcome


_INFRA = (SessionClosed, InfraError)


DEFAULT_LIMITS = Limits()  # shared by episodes given none (read, never changed)
_UNTIMED, _NO_USAGE = Timing(), Usage()  # an open episode's placeholders (see run_episode)


@functools.lru_cache(maxsize=256)
def _tool_names(names: tuple[str, ...]) -> frozenset[str]:
    """The offered tool names as one shared set per toolset (not one per open episode)."""
    return frozenset(names)


class EpisodeSteps:
    """One episode's steps over an open session. Steps raise :class:`EpisodeEnded` for
    infra/user_sim endings; limits set ``traj.meta["limit"]`` and ``done``."""

    __slots__ = ("task", "user", "session", "traj", "limits", "asked", "tools", "names", "turns", "calls", "done")

    def __init__(self, task: Task, user: UserSimulator, session: ToolSession, traj: Trajectory,
                 limits: Limits | None = None):
        self.task = task
        self.user = user
        self.session = session
        self.traj = traj
        self.limits = limits or DEFAULT_LIMITS
        self.asked = AskedTracker(task)  # subtasks the user messages stated so far
        self.tools: list[ToolSpecView] = []
        self.names: frozenset[str] = frozenset()
        self.turns = 0  # assistant messages
        self.calls = 0
        self.done = False  # the user stopped or a limit was reached: judge now

    @property
    def messages(self) -> list[Message]:
        return self.traj.messages

    def _limit(self, what: str) -> None:
        self.traj.meta["limit"] = what
        self.done = True

    async def start(self) -> None:
        try:
            self.tools = await self.session.list_tools()
        except _INFRA as exc:
            raise EpisodeEnded(Outcome.infra(str(exc))) from None
        self.names = _tool_names(tuple(t.name for t in self.tools))
        self.traj.meta["tools"] = sorted(self.names)  # what the agent was offered (tool subsets vary it)
        task = self.task
        self.messages.append(Message(role="system", content=task.system_prompt or DEFAULT_SYSTEM.format(domain=task.domain)))
        await self.user.start(task)

    async def user_turn(self) -> Message | None:
        """The user's next message (None when it has none, e.g. it stopped). A checkpoint of the
        task's records is taken first, except before the opening message."""
        if self.turns:
            try:
                await checkpoint(self.task, self.session, self.traj, self.asked.count(self.messages))
            except _INFRA as exc:
                raise EpisodeEnded(Outcome.infra(str(exc))) from None
        try:
            reply = await self.user.respond(self.messages)
        except UserSimError as exc:
            raise EpisodeEnded(Outcome.user_sim(str(exc))) from None
        if reply.violation:
            raise EpisodeEnded(Outcome.user_sim(f"user simulator broke its role: {reply.violation}"))
        if reply.message is not None:
            self.messages.append(reply.message)
        if reply.stop:
            self.done = True
        return reply.message

    def turn_allowed(self) -> bool:
        """Whether the agent may act again (sets the turn limit when not)."""
        if self.turns >= self.limits.max_turns:
            self._limit(f"max_turns {self.limits.max_turns}")
            return False
        return True

    async def agent_turn(self, msg: Message) -> list[tuple[ToolCall, ToolResult]]:
        """Record an assistant message and run its tool calls; ``[]`` means it handed the
        turn back to the user (or a limit ended the episode: see ``done``)."""
        self.turns += 1
        traj = self.traj
        messages = traj.messages
        messages.append(msg)
        if msg.usage:
            u = traj.usage
            traj.usage = Usage(prompt_tokens=u.prompt_tokens + msg.usage.prompt_tokens,
                               completion_tokens=u.completion_tokens + msg.usage.completion_tokens)
        calls = msg.tool_calls
        if not calls:
            return []
        if self.calls + len(calls) > self.limits.max_tool_calls:
            self._limit(f"max_tool_calls {self.limits.max_tool_calls}")
            return []
        self.calls += len(calls)
        try:
            if len(calls) == 1:  # the common case: no task and gather for one call
                results = [await _run_call(calls[0], self.names, self.session)]
            else:
                results = await asyncio.gather(*(_run_call(c, self.names, self.session) for c in calls))
        except _INFRA as exc:
            raise EpisodeEnded(Outcome.infra(str(exc))) from None
        out = []
        records = traj.calls
        for call, (args, result) in zip(calls, results):
            name, content = call.function.name, result.content
            if result.is_error:
                records.append(CallRecord(name=name, args=args if args is not None else call.function.arguments,
                                          error=content))
            else:
                records.append(CallRecord(name=name, args=args, result=result.structured))
            messages.append(Message(role="tool", tool_call_id=call.id, name=name, content=content))
            out.append((call, result))
        return out

    async def final_state(self) -> None:
        """Read the final state for the scorer (infra when the server is gone)."""
        hashed = getattr(self.session, "hashed_snapshot", None)  # one encoding, where the session can
        try:
            if hashed is not None:
                final, digest = await hashed()
            else:
                final = await self.session.snapshot()
                digest = state_hash(final)
        except (*_INFRA, RuntimeError) as exc:
            raise EpisodeEnded(Outcome.infra(f"final state unavailable: {exc}")) from None
        self.traj.final_state = final
        self.traj.final_hash = digest


async def drive_agent(steps: EpisodeSteps, agent: Agent) -> None:
    """The turn loop with an Agent: user, then the agent until it replies without tool calls."""
    await steps.start()
    await agent.start(steps.task)
    while True:
        await steps.user_turn()
        if steps.done:
            return
        while True:
            if not steps.turn_allowed():
                return
            try:
                msg = await agent.act(steps.messages, steps.tools)
            except AgentError as exc:
                raise EpisodeEnded(Outcome.infra(f"agent endpoint: {exc}")) from None
            ran = await steps.agent_turn(msg)
            if steps.done:
                return
            if not ran:
                break


async def within_limits(coro: Any, clock: EpisodeClock, limits: Limits, traj: Trajectory) -> Outcome | None:
    """Run ``coro`` while the *agent's* time stays under ``limits.wall_time_s`` (harness waits
    extend the deadline) and harness waits under ``limits.harness_time_s``. Expiry of the agent
    time is a limit (judged as it stands: None); expiry inside a harness wait, or of the harness
    budget, is ``infra``.

    ``coro`` runs in the calling task (no task, wait or timeout future per episode: an episode
    that never suspends costs one timer and one yield); a timer re-checks the clocks when the
    time left is up and cancels the task when a limit is reached."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    ended: list[str | None] = []  # set by the timer: the infra reason, or None for a limit

    def wait_s() -> float:
        left = min(limits.wall_time_s - clock.agent_s(), limits.harness_time_s - clock.harness_s())
        # While the harness waits the agent's clock stands still: re-check now and then.
        return max(left, 0.05 if clock.in_harness else 0.001)

    def check() -> None:
        nonlocal timer
        if clock.harness_s() >= limits.harness_time_s:
            ended.append(f"harness waits exceeded {limits.harness_time_s}s ({_causes(clock)})")
        elif clock.agent_s() >= limits.wall_time_s:
            if clock.in_harness:  # the agent's time ran out while the harness was waiting
                ended.append(f"time limit reached while the harness waited ({clock.in_harness})")
            else:
                traj.meta["limit"] = f"wall time {limits.wall_time_s}s"
                ended.append(None)
        else:
            timer = loop.call_later(wait_s(), check)
            return
        me.cancel()

    timer = loop.call_later(wait_s(), check)
    try:
        # One yield to the loop per episode (what starting a task gave): an episode that never
        # suspends (inline tools, a scripted agent) must not hold the loop from start to end,
        # keeping other episodes, cancellations and timers waiting.
        await asyncio.sleep(0)
        await coro  # EpisodeEnded and bugs propagate
    except BaseException as exc:
        if not ended:
            raise
        # A limit ended it: whatever the cancelled episode raised gives way to the verdict,
        # unless the task was also cancelled from outside.
        if me.uncancel() > 0 and isinstance(exc, asyncio.CancelledError):
            raise
    else:
        if not ended:
            return None
        me.uncancel()  # the episode finished despite the limit's cancellation
    finally:
        timer.cancel()
        coro.close()  # a no-op once it ran; closes it when cancelled before it started
    return None if ended[0] is None else Outcome.infra(ended[0])


def _causes(clock: EpisodeClock) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in sorted(clock.by_cause.items())) or "none"


async def run_episode(task: Task, agent: Agent, user: UserSimulator, session: ToolSession, *,
                      episode_id: str, trial: int = 0, limits: Limits | None = None, scorer: Any = None,
                      clock: EpisodeClock | None = None) -> Trajectory:
    """One episode on an open session, verified by ``scorer`` (default: the verifiable check
    alone; rubric judges run in :meth:`Scorer.judge`, after infra retries)."""
    from toolzoo.envs.scorer import VERIFIABLE

    limits = limits or DEFAULT_LIMITS
    clock = clock or EpisodeClock()
    # Timing and usage start as shared zero placeholders (read-only), replaced below: an open
    # episode holds no Timing/Usage of its own.
    traj = Trajectory(episode_id=episode_id, task=task, trial=trial, timing=_UNTIMED, usage=_NO_USAGE)
    steps = EpisodeSteps(task, user, session, traj, limits)
    with use_clock(clock):
        try:
            traj.outcome = await within_limits(drive_agent(steps, agent), clock, limits, traj)
            if traj.outcome is None:
                await steps.final_state()
        except EpisodeEnded as ended:
            traj.outcome = ended.outcome
    traj.seconds = clock.wall_s()
    traj.timing = clock.timing()
    if traj.usage is _NO_USAGE:  # no message reported usage: the trajectory gets its own zeros
        traj.usage = Usage()
    if traj.outcome is None:
        (scorer or VERIFIABLE).verify(traj)
    return traj


async def checkpoint(task: Task, session: ToolSession, traj: Trajectory, asked: int | None = None) -> None:
    """Keep the task-touched records as the agent left them for the user: per-subtask judging."""
    records: dict[str, dict[str, Any]] = {}
    if task.touched:
        read = getattr(session, "records", None)  # the touched records alone, where the session can
        if read is not None:
            records = await read(task.touched)
        else:
            state = await session.snapshot()
            records = {c: {k: state.get(c, {}).get(k) for k in keys} for c, keys in task.touched.items()}
    if asked is None:
        asked = task.asked_in(traj.messages)
    traj.checkpoints.append(Checkpoint(asked=asked, message_index=len(traj.messages),
                                       records=records))


_checkpoint = checkpoint  # the old private name (kept for imports elsewhere)


async def _run_call(call: ToolCall, names: set[str], session: ToolSession) -> tuple[Any, ToolResult]:
    fn = call.function
    raw = fn.arguments
    if raw and fn.name in names:  # the common case: a known tool and a JSON object, parsed once
        args = _json_object(raw)
        if args is not None:
            return args, await _call(session, fn.name, args, call.id)
    error = validate_tool_call(call, names)
    if error is not None:
        return None, ToolResult(call_id=call.id, name=call.name, content=error, is_error=True)
    args = call.parsed_args()
    return args, await _call(session, call.name, args, call.id)


async def _call(session: ToolSession, name: str, args: Any, call_id: str) -> ToolResult:
    # A NaN or infinity (json.loads reads NaN, Infinity, 1e400) is answered here, the same on
    # every session: over MCP it would arrive as null.
    problem = non_finite_problem(name, args)
    if problem is not None:
        return ToolResult(call_id=call_id, name=name, content=problem, is_error=True)
    return await session.call_tool(name, args, call_id)


def _json_object(raw: str) -> dict[str, Any] | None:
    """``raw`` parsed when it is a JSON object, else None; values exactly ``json.loads``'s."""
    try:
        value = json_loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def tool_views_openai(tools: list[ToolSpecView]) -> list[dict[str, Any]]:
    return [t.to_openai() for t in tools]
