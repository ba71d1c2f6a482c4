"""The run driver: output files, summary shape, and a SIGKILLed run of 1,000 episodes that
resumes to exactly 1,000 distinct episodes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from toolzoo.agents.formats import get_format
from toolzoo.core import Message
from toolzoo.envs.run_config import load_run_config
from toolzoo.envs.runner import Runner
from toolzoo.envs.store import TrajectoryStore


def _config(tmp_path: Path, **overrides) -> Path:
    cfg = {"run": "t", "domains": ["retail_orders"], "lengths": [1, 2], "tasks_per_length": 5, "trials": 2,
           "agent": {"kind": "oracle"}, "concurrency": 8, "output": str(tmp_path / "out"), "report": False}
    cfg.update(overrides)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_writes_trajectories_config_and_summary(tmp_path):
    config = load_run_config(_config(tmp_path))
    summary = asyncio.run(Runner(config).run(progress=False))
    out = Path(config.output)
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 20 and len({json.loads(x)["episode_id"] for x in lines}) == 20
    assert (out / "config.yaml").exists()
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["by_length"] == {"1": {"episodes": 10, "successes": 10, "rate": 1.0},
                                    "2": {"episodes": 10, "successes": 10, "rate": 1.0}}
    assert on_disk["infra_errors"] == 0 and on_disk["user_sim_errors"] == 0
    assert summary["by_length"] == on_disk["by_length"]


def test_existing_output_needs_resume_or_overwrite(tmp_path):
    config = load_run_config(_config(tmp_path))
    asyncio.run(Runner(config).run(progress=False))
    try:
        asyncio.run(Runner(config).run(progress=False))
        raise AssertionError("expected FileExistsError")
    except FileExistsError as exc:
        assert "--resume" in str(exc)
    again = asyncio.run(Runner(config, resume=True).run(progress=False))
    assert again["episodes"] == 20


def test_store_drops_a_partial_last_line(tmp_path):
    config = load_run_config(_config(tmp_path, lengths=[1], tasks_per_length=2, trials=1))
    asyncio.run(Runner(config).run(progress=False))
    path = Path(config.output) / "trajectories.jsonl"
    text = path.read_text()
    path.write_text(text + text.splitlines()[0][:50])  # a write cut short by a kill
    ids = TrajectoryStore(path).repair()
    assert len(ids) == 2 and path.read_text() == text


def test_sigkill_then_resume_gives_exactly_1000_distinct_episodes(tmp_path):
    cfg = _config(tmp_path, lengths=[1, 2, 4, 8], tasks_per_length=125, trials=2,
                  agent={"kind": "noisy_oracle", "p": 0.1}, concurrency=16)
    out = tmp_path / "out" / "trajectories.jsonl"
    cmd = [sys.executable, "-m", "toolzoo.cli", "run", str(cfg), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if out.exists() and len(out.read_bytes().splitlines()) >= 150:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(out.read_bytes().splitlines())
    assert 0 < partial < 1000, partial
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ids = [json.loads(line)["episode_id"] for line in out.read_text().splitlines()]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert sum(row["episodes"] for row in summary["by_length"].values()) + summary["infra_errors"] == 1000


class GarbledCaller:
    """Writes one tool call that does not parse, then gives up: what a small model does."""

    def __init__(self) -> None:
        self.turn = 0

    async def start(self, task) -> None:
        self.turn = 0

    async def act(self, messages, tools):
        self.turn += 1
        if self.turn == 1:
            parsed = get_format("hermes").parse('<tool_call>{"name": "get_order", "arguments": {oops</tool_call>')
            return Message(role="assistant", content=parsed.content, tool_calls=parsed.tool_calls or None,
                           parse_errors=len(parsed.parse_errors))
        return Message(role="assistant", content="I cannot help.")


def test_summary_counts_unparsable_tool_calls(tmp_path):
    config = load_run_config(_config(tmp_path, lengths=[1], tasks_per_length=3, trials=1,
                                     agent={"kind": "python", "class": "tests.envs.test_runner:GarbledCaller"}))
    summary = asyncio.run(Runner(config).run(progress=False))
    assert summary["parse_errors"] == 3  # one per episode, none dropped
    assert summary["by_length"]["1"]["successes"] == 0
    traj = json.loads((Path(config.output) / "trajectories.jsonl").read_text().splitlines()[0])
    tool_msgs = [m for m in traj["messages"] if m["role"] == "tool"]
    assert tool_msgs and "error" in tool_msgs[0]["content"].lower()  # the agent was told
