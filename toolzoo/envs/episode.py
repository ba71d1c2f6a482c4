"""The episode loop: user opens, agent acts, tools run, judges score.

Tool calls go through a :class:`~toolzoo.tools.session.ToolSession`; several calls in one
assistant turn run concurrently. Agent mistakes (bad JSON arguments, unknown tools, failing
calls) come back to the agent as tool errors. Failures are attributed: the agent's own
(judged), ``infra`` (tool server gone, endpoint unreachable after retries), ``user_sim``
(the simulator failed or broke its role). Limits on turns, tool calls and wall time end the
episode, which is then judged as it stands.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel

from toolzoo.agents.base import Agent, AgentError
from toolzoo.agents.toolcall_check import validate_tool_call
from toolzoo.core import CallRecord, Checkpoint, Message, Outcome, Task, ToolCall, ToolResult, ToolSpecView, Trajectory, Usage
from toolzoo.envs.user import UserSimError, UserSimulator
from toolzoo.rubrics.verifiable import judge_verifiable
from toolzoo.tools.session import SessionClosed, ToolSession
from toolzoo.tools.state import state_hash

DEFAULT_SYSTEM = (
    "You are a careful assistant with access to tools for the {domain} domain. Use the tools to do "
    "what the user asks. When a request asks for information, state the answer plainly in your reply."
)


class Limits(BaseModel):
    max_turns: int = 64  # assistant messages
    max_tool_calls: int = 128
    wall_time_s: float = 300.0


async def run_episode(task: Task, agent: Agent, user: UserSimulator, session: ToolSession, *,
                      episode_id: str, trial: int = 0, limits: Limits | None = None) -> Trajectory:
    limits = limits or Limits()
    traj = Trajectory(episode_id=episode_id, task=task, trial=trial)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limits.wall_time_s):
            failure = await _loop(task, agent, user, session, traj, limits)
    except TimeoutError:
        failure = None
        traj.meta["limit"] = f"wall time {limits.wall_time_s}s"
    traj.seconds = time.perf_counter() - started
    if failure is not None:
        traj.outcome = failure
        return traj
    try:
        final = await session.snapshot()
    except (SessionClosed, RuntimeError) as exc:
        traj.outcome = Outcome(success=False, failure="infra", reason=f"final state unavailable: {exc}")
        return traj
    traj.final_state = final
    traj.final_hash = state_hash(final)
    score, outcome = judge_verifiable(task, traj.messages, final, traj.checkpoints)
    traj.scores["verifiable"] = score
    traj.outcome = outcome
    return traj


async def _loop(task: Task, agent: Agent, user: UserSimulator, session: ToolSession, traj: Trajectory,
                limits: Limits) -> Outcome | None:
    messages = traj.messages
    try:
        tools = await session.list_tools()
    except SessionClosed as exc:
        return Outcome(success=False, failure="infra", reason=str(exc))
    names = {t.name for t in tools}
    traj.meta["tools"] = sorted(names)  # what the agent was offered (tool subsets vary it)
    messages.append(Message(role="system", content=task.system_prompt or DEFAULT_SYSTEM.format(domain=task.domain)))
    await agent.start(task)
    await user.start(task)
    turns = calls = 0
    while True:
        if turns:
            try:
                await _checkpoint(task, session, traj)
            except SessionClosed as exc:
                return Outcome(success=False, failure="infra", reason=str(exc))
        try:
            reply = await user.respond(messages)
        except UserSimError as exc:
            return Outcome(success=False, failure="user_sim", reason=str(exc))
        if reply.violation:
            return Outcome(success=False, failure="user_sim", reason=f"user simulator broke its role: {reply.violation}")
        if reply.message is not None:
            messages.append(reply.message)
        if reply.stop:
            return None
        while True:  # the agent acts until it replies without tool calls
            if turns >= limits.max_turns:
                traj.meta["limit"] = f"max_turns {limits.max_turns}"
                return None
            try:
                msg = await agent.act(messages, tools)
            except AgentError as exc:
                return Outcome(success=False, failure="infra", reason=f"agent endpoint: {exc}")
            turns += 1
            messages.append(msg)
            if msg.usage:
                traj.usage = Usage(prompt_tokens=traj.usage.prompt_tokens + msg.usage.prompt_tokens,
                                   completion_tokens=traj.usage.completion_tokens + msg.usage.completion_tokens)
            if not msg.tool_calls:
                break
            if calls + len(msg.tool_calls) > limits.max_tool_calls:
                traj.meta["limit"] = f"max_tool_calls {limits.max_tool_calls}"
                return None
            calls += len(msg.tool_calls)
            try:
                results = await asyncio.gather(*(_run_call(c, names, session) for c in msg.tool_calls))
            except SessionClosed as exc:
                return Outcome(success=False, failure="infra", reason=str(exc))
            for call, (args, result) in zip(msg.tool_calls, results):
                traj.calls.append(CallRecord(name=call.name, args=args if args is not None else call.function.arguments,
                                             error=result.content if result.is_error else None,
                                             result=None if result.is_error else result.structured))
                messages.append(Message(role="tool", tool_call_id=call.id, name=call.name, content=result.content))


async def _checkpoint(task: Task, session: ToolSession, traj: Trajectory) -> None:
    """Keep the task-touched records as the agent left them for the user: per-subtask judging."""
    records: dict[str, dict[str, Any]] = {}
    if task.touched:
        state = await session.snapshot()
        records = {c: {k: state.get(c, {}).get(k) for k in keys} for c, keys in task.touched.items()}
    traj.checkpoints.append(Checkpoint(asked=task.asked_in(traj.messages), message_index=len(traj.messages),
                                       records=records))


async def _run_call(call: ToolCall, names: set[str], session: ToolSession) -> tuple[Any, ToolResult]:
    error = validate_tool_call(call, names)
    if error is not None:
        return None, ToolResult(call_id=call.id, name=call.name, content=error, is_error=True)
    args = call.parsed_args()
    return args, await session.call_tool(call.name, args, call.id)


def tool_views_openai(tools: list[ToolSpecView]) -> list[dict[str, Any]]:
    return [t.to_openai() for t in tools]
