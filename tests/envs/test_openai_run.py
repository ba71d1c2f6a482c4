"""The openai agent inside real runs against a local OpenAI-compatible server (real HTTP, a
real server process): retries, attribution and recording of each failure case."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from toolzoo.envs.run_config import load_run_config
from toolzoo.envs.runner import Runner
from toolzoo.testing.openai_stub import OpenAIStub

# A competent "model": asks for the order, then reads the status out of the tool result.
SOLVER_RULES = [
    {"match": r"status of order (o\d+)\?", "reply": {"tool_calls": [{"name": "get_order", "arguments": '{"order_id": "\\1"}'}], "expand": True}},
    {"match": r'"status":"(\w+)"', "reply": {"content": "The status is \\1.", "expand": True}},
]


def _run(tmp_path: Path, stub: OpenAIStub, name: str, **agent) -> tuple[dict, list[dict]]:
    cfg = {"run": name, "domains": ["retail_orders"], "lengths": [1], "tasks_per_length": 3, "trials": 1,
           "generator": {"templates": ["status_of"]}, "concurrency": 1, "max_infra_retries": 1,
           "agent": {"kind": "openai", "base_url": stub.base_url, "model": "stub", "max_retries": 2,
                     "backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 2, **agent},
           "output": str(tmp_path / name), "report": False}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    summary = asyncio.run(Runner(load_run_config(path)).run(progress=False))
    rows = [json.loads(x) for x in (tmp_path / name / "trajectories.jsonl").read_text().splitlines()]
    return summary, rows


@pytest.fixture(scope="module")
def stub():
    with OpenAIStub() as s:
        yield s


def test_competent_model_succeeds_and_usage_is_recorded(tmp_path, stub):
    stub.load({"rules": SOLVER_RULES})
    summary, rows = _run(tmp_path, stub, "ok")
    assert summary["by_length"]["1"]["rate"] == 1.0
    assert all(r["usage"]["completion_tokens"] > 0 for r in rows)
    sent = stub.bodies()[0]
    assert sent["tools"][0]["type"] == "function" and sent["messages"][0]["role"] == "system"


def test_429_and_500_are_retried_then_succeed(tmp_path, stub):
    stub.load({"steps": [{"status": 429, "headers": {"Retry-After": "0"}}, {"status": 500}],
               "rules": SOLVER_RULES[1:], "default": {"tool_calls": [{"name": "get_order", "arguments": '{"order_id": "o0001"}'}]}})
    summary, rows = _run(tmp_path, stub, "retry", )
    assert summary["infra_errors"] == 0
    assert rows[0]["attempts"] == 1  # retried inside the client, not as an infra failure


def test_endpoint_down_is_infra_retried_on_a_fresh_sandbox_and_never_an_agent_failure(tmp_path, stub):
    stub.load({"default": {"status": 503}})
    summary, rows = _run(tmp_path, stub, "down")
    assert summary["infra_errors"] == 3 and summary["by_length"] == {}
    assert all(r["outcome"]["failure"] == "infra" and r["attempts"] == 2 for r in rows)
    # 3 episodes x 2 attempts x (1 + max_retries 2) requests
    assert len(stub.requests()) == 3 * 2 * 3


def test_timeouts_are_infra_after_retries(tmp_path, stub):
    stub.load({"default": {"content": "late", "delay_s": 3}})
    summary, rows = _run(tmp_path, stub, "slow", timeout_s=0.3, max_retries=1)
    assert summary["infra_errors"] == 3


def test_malformed_tool_calls_and_garbage_text_are_agent_failures(tmp_path, stub):
    stub.load({"rules": [{"match": r"status of order", "reply": {"tool_calls": [{"name": "get_order", "arguments": '{"order_id": '}]}},
                         {"match": r"not valid JSON", "reply": {"tool_calls": [{"name": "fly_to_moon", "arguments": "{}"}]}},
                         {"match": r"unknown tool", "reply": {"content": "asdf qwer zxcv"}}]})
    summary, rows = _run(tmp_path, stub, "bad")
    assert summary["infra_errors"] == 0 and summary["by_length"]["1"]["successes"] == 0
    calls = rows[0]["calls"]
    assert "not valid JSON" in calls[0]["error"] and "unknown tool 'fly_to_moon'" in calls[1]["error"]
    assert rows[0]["outcome"]["failure"] == "agent"


def test_garbage_body_is_infra(tmp_path, stub):
    stub.load({"default": {"raw": "<html>gateway hiccup</html>"}})
    summary, rows = _run(tmp_path, stub, "garbage")
    assert summary["infra_errors"] == 3 and "agent endpoint" in rows[0]["outcome"]["reason"]
