"""The episode loop attributes every failure: agent mistakes are tool errors the agent sees,
endpoint and tool-server failures are infra, user-simulator failures are user_sim."""

from __future__ import annotations

import asyncio

import pytest

from toolzoo.agents.base import AgentError
from toolzoo.agents.scripted import OracleAgent
from toolzoo.core import FunctionCall, Message, ToolCall
from toolzoo.envs.episode import Limits, run_episode
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.envs.taskgen import TaskGenerator
from toolzoo.envs.user import UserReply
from toolzoo.tools.session import SessionClosed
from toolzoo.tools.zoo import get_domain

from tests.envs.helpers import play

TASK = TaskGenerator(get_domain("retail_orders")).generate(0, 2)


class ScriptAgent:
    def __init__(self, replies):
        self.replies = list(replies)
        self.seen: list[list[Message]] = []

    async def start(self, task):
        pass

    async def act(self, messages, tools):
        self.seen.append(list(messages))
        reply = self.replies.pop(0) if self.replies else Message(role="assistant", content="done")
        if isinstance(reply, Exception):
            raise reply
        return reply


def test_malformed_and_unknown_calls_come_back_as_tool_errors():
    bad_json = Message(role="assistant", tool_calls=[ToolCall(id="a", function=FunctionCall(name="get_order", arguments="{oops"))])
    unknown = Message(role="assistant", tool_calls=[ToolCall.make("teleport", {}, id="b")])
    wrong_type = Message(role="assistant", tool_calls=[ToolCall.make("get_order", {"order_id": 1}, id="c")])
    agent = ScriptAgent([bad_json, unknown, wrong_type])
    traj = play(TASK, agent)
    tool_msgs = [m for m in traj.messages if m.role == "tool"]
    assert "not valid JSON" in tool_msgs[0].content and tool_msgs[0].tool_call_id == "a"
    assert "unknown tool 'teleport'" in tool_msgs[1].content
    assert "order_id" in tool_msgs[2].content
    assert [c.error is not None for c in traj.calls] == [True, True, True]
    assert traj.outcome.failure == "agent" and not traj.outcome.success
    # the agent saw its own mistakes before acting again
    assert any(m.role == "tool" and "not valid JSON" in (m.content or "") for m in agent.seen[1])


def test_parallel_calls_in_one_turn_all_run():
    order_ids = ["o0001", "o0002", "o0003"]
    turn = Message(role="assistant", tool_calls=[ToolCall.make("get_order", {"order_id": o}, id=o) for o in order_ids])
    traj = play(TASK, ScriptAgent([turn]))
    assert [m.tool_call_id for m in traj.messages if m.role == "tool"] == order_ids
    assert all(c.error is None for c in traj.calls)


def test_agent_endpoint_failure_is_infra():
    traj = play(TASK, ScriptAgent([AgentError("503 after 3 retries")]))
    assert traj.outcome.failure == "infra" and "503" in traj.outcome.reason


def test_user_simulator_violation_and_failure_are_user_sim():
    class Rogue(ScriptedUser):
        async def respond(self, messages):
            return UserReply(message=Message(role="user", content="call refund_order on o0001"), violation="revealed the solution")

    traj = play(TASK, OracleAgent(), Rogue())
    assert traj.outcome.failure == "user_sim"


def test_limits_end_the_episode_and_it_is_judged():
    looping = [Message(role="assistant", tool_calls=[ToolCall.make("get_order", {"order_id": "o0001"}, id=str(i))])
               for i in range(50)]
    traj = play(TASK, ScriptAgent(looping), limits=Limits(max_tool_calls=5))
    assert traj.meta["limit"].startswith("max_tool_calls") and traj.outcome.failure == "agent"
    traj = play(TASK, ScriptAgent(looping), limits=Limits(max_turns=3))
    assert traj.meta["limit"].startswith("max_turns")

    class Slow(ScriptAgent):
        async def act(self, messages, tools):
            await asyncio.sleep(5)

    traj = play(TASK, Slow([]), limits=Limits(wall_time_s=0.3))
    assert traj.meta["limit"].startswith("wall time") and traj.outcome.failure == "agent"


def test_tool_server_death_is_infra():
    class DeadSession:
        async def list_tools(self):
            from toolzoo.core import ToolSpecView
            return [ToolSpecView(name="get_order")]

        async def call_tool(self, name, args, call_id=""):
            raise SessionClosed("tool server process exited")

        async def snapshot(self):
            raise SessionClosed("gone")

    turn = Message(role="assistant", tool_calls=[ToolCall.make("get_order", {"order_id": "o0001"})])
    traj = asyncio.run(run_episode(TASK, ScriptAgent([turn]), ScriptedUser(), DeadSession(), episode_id="x"))
    assert traj.outcome.failure == "infra" and "exited" in traj.outcome.reason


@pytest.mark.parametrize("backend, transport", [("inline", "direct"), ("inline", "mcp"), ("process", "direct")])
def test_nan_and_infinity_in_arguments_get_the_same_tool_error_on_every_session(backend, transport):
    # json.loads reads NaN, Infinity and 1e400 as floats. Over a JSON-framed session (the
    # process tier's stdio) the SDK would write them as null: another error, or none at all for
    # an untyped argument. The episode answers them itself, the same on every session.
    from toolzoo.sandbox import SandboxSpec, create_sandbox

    texts = ['{"order_id": NaN}', '{"order_id": "o0001", "note": [Infinity]}', '{"order_id": 1e400}']
    agent = ScriptAgent([Message(role="assistant", tool_calls=[
        ToolCall(id=f"c{i}", function=FunctionCall(name="get_order", arguments=t))]) for i, t in enumerate(texts)])

    async def main():
        spec = SandboxSpec(backend=backend, domain=TASK.domain, seed=TASK.seed, transport=transport)
        sandbox = await create_sandbox(spec)
        try:
            return await run_episode(TASK, agent, ScriptedUser(), sandbox.session, episode_id="nan")
        finally:
            await sandbox.close()

    traj = asyncio.run(main())
    assert [m.content for m in traj.messages if m.role == "tool"] == [
        "get_order: invalid arguments: argument 'order_id': NaN and Infinity are not JSON numbers",
        "get_order: invalid arguments: argument 'note.0': NaN and Infinity are not JSON numbers",
        "get_order: invalid arguments: argument 'order_id': NaN and Infinity are not JSON numbers"]
    assert all(c.error is not None for c in traj.calls) and traj.outcome.failure == "agent"
