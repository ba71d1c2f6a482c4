"""Run-level features wired through the driver: tool subsets (Kimi-style) and LLM-simulated
tools (one world model per episode, against a local OpenAI-compatible server)."""

from __future__ import annotations

import asyncio
import json

from toolzoo.core import Message, ToolCall
from toolzoo.envs import factories
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.runner import Runner
from toolzoo.testing import OpenAIStub

from tests.envs.helpers import sim_domain_yaml


def test_tool_subset_offers_extra_tools_and_a_role_prompt_and_the_oracle_still_succeeds(tmp_path):
    config = RunConfig(run="subset", domains=["retail_orders"], lengths=[1, 3], tasks_per_length=4, trials=1,
                       agent={"kind": "oracle"}, output=str(tmp_path / "out"), report=False,
                       tool_subset={"extra_domains": ["bank_accounts", "factworld"], "extra_tools": 3, "seed": 1})
    runner = Runner(config)
    summary = asyncio.run(runner.run(progress=False))
    assert summary["by_length"]["1"]["rate"] == 1.0 and summary["by_length"]["3"]["rate"] == 1.0
    retail = {"get_order", "get_customer", "list_orders", "refund_order", "cancel_order", "ship_order", "upgrade_customer"}
    offered = []
    for traj in runner.store:
        tools = set(traj.meta["tools"])
        needed = {step.tool for sub in traj.task.subtasks for step in sub.solution}
        assert needed <= tools  # the task's own tools are always offered
        assert len(tools) == len(needed) + 3  # plus three distractors (unused retail tools or other domains')
        assert traj.messages[0].role == "system" and traj.messages[0].content
        offered.append(frozenset(tools))
    assert len(set(offered)) > 1  # the subset is sampled per episode
    assert any(tools - retail for tools in offered)  # other domains' tools do get offered


def test_simulated_tool_is_answered_by_the_runs_world_model(tmp_path, monkeypatch):
    domain = tmp_path / "mixed.yaml"
    domain.write_text(sim_domain_yaml("mixed_sim", notes=3))

    class WeatherAgent:
        async def start(self, task):
            self.turn = 0

        async def act(self, messages, tools):
            self.turn += 1
            if self.turn == 1:
                return Message(role="assistant", tool_calls=[ToolCall.make("get_weather", {"city": "Oslo"}, id="w")])
            return Message(role="assistant", content="hello")

    monkeypatch.setattr(factories.AgentFactory, "make", lambda self, episode_id="": WeatherAgent())
    reply = {"content": json.dumps({"result": {"temp_c": 7}, "state_update": {}, "error": None})}
    with OpenAIStub({"default": reply}) as stub:
        config = RunConfig(run="sim", domains=[str(domain)], lengths=[1], tasks_per_length=2, trials=1,
                           output=str(tmp_path / "out"), report=False,
                           simulator={"base_url": stub.base_url, "model": "world", "api_key": "k"})
        runner = Runner(config)
        summary = asyncio.run(runner.run(progress=False))
        assert len(stub.requests()) == 2  # one world-model call per episode
    assert summary["by_length"]["1"]["rate"] == 1.0
    for traj in runner.store:
        weather = next(m for m in traj.messages if m.role == "tool" and m.name == "get_weather")
        assert json.loads(weather.content) == {"temp_c": 7}
