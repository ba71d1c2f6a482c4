"""The one episode driver and the outcome model in runs: time attribution (agent vs harness),
harness failures as data, resume fingerprints, --retry-infra, the gym env on the same steps."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from toolzoo.core import FailureKind, Message, ToolCall, counts_for_rate
from toolzoo.envs import factories
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.runner import HarnessFailures, RunChanged, Runner, plan_jobs
from toolzoo.testing import OpenAIStub
from toolzoo.tools.zoo import resolve_path

from tests.envs.helpers import sim_domain_yaml


def _config(tmp_path, name="run", **kw) -> RunConfig:
    base = dict(run=name, domains=["retail_orders"], lengths=[1], tasks_per_length=4, trials=1,
                agent={"kind": "oracle"}, output=str(tmp_path / name), report=False, concurrency=4)
    base.update(kw)
    return RunConfig(**base)


def _run(config, **kw):
    runner = Runner(config, **kw)
    return runner, asyncio.run(runner.run(progress=False))


# -- time attribution -------------------------------------------------------------------------

def test_an_endpoint_answering_429_longer_than_the_limit_is_infra_not_the_agent(tmp_path):
    with OpenAIStub({"default": {"status": 429}}) as stub:
        # the retries take ~2 s against a 1 s limit (generous: this box may be loaded)
        config = _config(tmp_path, tasks_per_length=1, max_infra_retries=0, limits={"wall_time_s": 1.0},
                         agent={"kind": "openai", "base_url": stub.base_url, "model": "m", "api_key": "k",
                                "max_retries": 30, "backoff_base_s": 0.1, "backoff_max_s": 0.1})
        runner, summary = _run(config)
        assert len(stub.requests()) == 31  # every retry ran: the limit did not cut them off
    [traj] = list(runner.store)
    assert traj.outcome.failure == FailureKind.INFRA and "429" in traj.outcome.reason
    assert "limit" not in traj.meta  # not a time limit charged to the agent
    assert traj.timing.harness_s > config.limits.wall_time_s > traj.timing.agent_s
    assert traj.timing.harness["endpoint_retry"] > config.limits.wall_time_s
    assert summary["infra_errors"] == 1 and summary["by_length"] == {}


def test_harness_waits_past_their_budget_end_the_episode_as_infra(tmp_path):
    with OpenAIStub({"default": {"status": 503}}) as stub:
        config = _config(tmp_path, tasks_per_length=1, max_infra_retries=0,
                         limits={"wall_time_s": 60, "harness_time_s": 0.4},
                         agent={"kind": "openai", "base_url": stub.base_url, "model": "m", "api_key": "k",
                                "max_retries": 10_000, "backoff_base_s": 0.02, "backoff_max_s": 0.04})
        runner, _ = _run(config)
    [traj] = list(runner.store)
    assert traj.outcome.failure == FailureKind.INFRA and "harness waits exceeded" in traj.outcome.reason
    assert 0.4 <= traj.timing.harness_s < 5


def test_the_agents_own_slowness_is_still_a_time_limit(tmp_path, monkeypatch):
    class Slow:
        async def start(self, task):
            pass

        async def act(self, messages, tools):
            await asyncio.sleep(0.2)
            return Message(role="assistant", tool_calls=[ToolCall.make("get_order", {"order_id": "x"})])

    monkeypatch.setattr(factories.AgentFactory, "make", lambda self, episode_id="": Slow())
    runner, summary = _run(_config(tmp_path, tasks_per_length=1, limits={"wall_time_s": 0.5}))
    [traj] = list(runner.store)
    assert traj.meta["limit"] == "wall time 0.5s"
    assert traj.outcome.failure == FailureKind.AGENT  # judged as it stood
    assert traj.timing.agent_s >= 0.5 and summary["by_length"]["1"]["episodes"] == 1


SIM_DOMAIN = sim_domain_yaml("weather_sim")


@pytest.mark.parametrize("transport", ["direct", "mcp"])
def test_a_simulated_tool_whose_endpoint_is_down_is_infra_not_a_tool_error(tmp_path, monkeypatch, transport):
    domain = tmp_path / "weather.yaml"
    domain.write_text(SIM_DOMAIN)

    class WeatherAgent:
        async def start(self, task):
            self.turn = 0

        async def act(self, messages, tools):
            self.turn += 1
            if self.turn == 1:
                return Message(role="assistant", tool_calls=[ToolCall.make("get_weather", {"city": "Oslo"})])
            return Message(role="assistant", content="hello")

    monkeypatch.setattr(factories.AgentFactory, "make", lambda self, episode_id="": WeatherAgent())
    with OpenAIStub({"default": {"status": 500}}) as stub:
        config = _config(tmp_path, domains=[str(domain)], tasks_per_length=2, max_infra_retries=0,
                         limits={"wall_time_s": 1.0}, sandbox={"transport": transport},
                         simulator={"base_url": stub.base_url, "model": "world", "api_key": "k", "max_retries": 8,
                                    "backoff_base_s": 0.25, "backoff_max_s": 0.25})
        runner, summary = _run(config)
    trajs = list(runner.store)
    assert len(trajs) == 2 and summary["infra_errors"] == 2
    for traj in trajs:
        assert traj.outcome.failure == FailureKind.INFRA, traj.outcome
        # in-process the reason names the endpoint; over MCP the server's exception is an
        # internal error of the tool server, which the session reports as infra as well
        assert "world model endpoint" in traj.outcome.reason or (
            transport == "mcp" and "tool server failed" in traj.outcome.reason), traj.outcome
        assert not any(m.role == "tool" for m in traj.messages)  # the agent never saw an error for it
        assert traj.timing.harness["simulator"] > 1.0 > traj.timing.agent_s


# -- harness failures are data ----------------------------------------------------------------

def _keyerror_on(monkeypatch, victims):
    from toolzoo.agents.scripted import OracleAgent

    class Buggy(OracleAgent):
        async def act(self, messages, tools):
            raise KeyError("boom")

    monkeypatch.setattr(factories.AgentFactory, "make",
                        lambda self, episode_id="": Buggy() if victims(episode_id) else OracleAgent())


def test_a_keyerror_in_one_of_100_episodes_is_one_harness_failure_and_the_run_finishes(tmp_path, monkeypatch):
    config = _config(tmp_path, lengths=[1, 2], tasks_per_length=50, concurrency=8)
    probe = Runner(config)
    victim = probe._episode_id([j for j in plan_jobs(config) if j.length == 2][17])
    _keyerror_on(monkeypatch, lambda eid: eid == victim)
    runner, summary = _run(config)
    trajs = list(runner.store)
    assert len(trajs) == 100 and summary["episodes"] == 100
    harness = [t for t in trajs if t.outcome.failure == FailureKind.HARNESS]
    assert [t.episode_id for t in harness] == [victim]
    assert "KeyError" in harness[0].outcome.reason and "Traceback" in harness[0].meta["traceback"]
    assert "act" in harness[0].meta["traceback"]  # where it was raised
    assert sum(counts_for_rate(t.outcome) for t in trajs) == 99
    assert summary["harness_errors"] == 1
    assert sum(r["episodes"] for r in summary["by_length"].values()) == 99
    # --retry-infra re-runs exactly the stored harness (and infra) failures
    monkeypatch.undo()
    runner2, summary2 = _run(config, resume=True, retry_infra=True)
    trajs2 = list(runner2.store)
    assert len(trajs2) == 100 and summary2["harness_errors"] == 0
    assert {t.episode_id for t in trajs2} == {t.episode_id for t in trajs}
    assert next(t for t in trajs2 if t.episode_id == victim).outcome.success


def test_harness_failures_in_a_row_stop_the_run_with_a_clear_error(tmp_path, monkeypatch):
    _keyerror_on(monkeypatch, lambda eid: True)
    config = _config(tmp_path, tasks_per_length=20, concurrency=1, max_harness_failures=3)
    runner = Runner(config)
    with pytest.raises(HarnessFailures, match=r"3 episodes in a row failed inside toolzoo.*KeyError"):
        asyncio.run(runner.run(progress=False))
    stored = list(runner.store)
    assert 3 <= len(stored) < 20 and all(t.outcome.failure == FailureKind.HARNESS for t in stored)
    assert json.loads((Path(config.output) / "trajectories.jsonl").read_text().splitlines()[0])["outcome"][
        "failure"] == "harness"  # the stored value is the plain string


# -- resume fingerprints ----------------------------------------------------------------------

def test_resume_after_editing_the_domain_file_is_refused_naming_the_change(tmp_path):
    domain = tmp_path / "retail.yaml"
    shutil.copy(resolve_path("retail_orders"), domain)
    config = _config(tmp_path, domains=[str(domain)], tasks_per_length=2)
    _run(config)
    _run(config, resume=True)  # unchanged: resumes (nothing left to do)
    domain.write_text(domain.read_text().replace("domain: retail_orders", "domain: retail_orders\n# edited", 1))
    with pytest.raises(RunChanged, match=rf"domain {domain}: fingerprint [0-9a-f]+ -> [0-9a-f]+"):
        Runner(config, resume=True).prepare()


def test_resume_with_a_changed_config_names_the_changed_fields(tmp_path):
    config = _config(tmp_path, tasks_per_length=2, agent={"kind": "noisy_oracle", "p": 0.2})
    _run(config)
    # where the output goes and how many run at once do not change episodes: allowed
    Runner(config.model_copy(update={"concurrency": 1}), resume=True).prepare()
    changed = config.model_copy(update={"agent": config.agent.model_copy(update={"p": 0.5})})
    with pytest.raises(RunChanged, match=r"config: fingerprint \w+ -> \w+ \(changed: agent\)"):
        Runner(changed, resume=True).prepare()


def test_cli_resume_refusal_is_a_clear_error(tmp_path, capsys):
    from toolzoo.cli import main

    domain = tmp_path / "retail.yaml"
    shutil.copy(resolve_path("retail_orders"), domain)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"run: r\ndomains: [{domain}]\nlengths: [1]\ntasks_per_length: 1\noutput: {tmp_path / 'out'}\n"
                   "report: false\n")
    assert main(["run", str(cfg), "--quiet"]) == 0
    domain.write_text(domain.read_text() + "\n# edited\n")
    assert main(["run", str(cfg), "--quiet", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "cannot --resume" in err and "retail.yaml" in err


# -- the gym env drives the same steps --------------------------------------------------------

def test_gym_env_records_calls_and_checkpoints_through_the_shared_steps():
    from toolzoo.envs.gym_env import ToolUseEnv

    env = ToolUseEnv("retail_orders", length=1)
    try:
        env.reset(seed=3)
        task = env.trajectory.task
        step = task.subtasks[0].solution[0]
        obs, *_ = env.step(json.dumps({"name": step.tool, "arguments": step.args}))
        assert env.trajectory.calls and env.trajectory.calls[0].name == step.tool  # CallRecords, as runs keep
        env.step('{"name": "no_such_tool", "arguments": {}}')
        assert env.trajectory.calls[-1].error and "no_such_tool" in env.trajectory.calls[-1].error
        assert env.trajectory.meta["tools"] == sorted(t.name for t in env.tools)
    finally:
        env.close()
