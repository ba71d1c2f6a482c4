"""Shared fixtures: a real small run (oracle and noisy oracle on retail_orders) and the stub server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from toolzoo.testing.openai_stub import stub_fixture

openai_stub = stub_fixture(scope="session")


def run_small(out: Path, agent: dict, judges: list | None = None, lengths=(1, 2, 4), tasks: int = 8):
    from toolzoo.envs.run_config import RunConfig
    from toolzoo.envs.runner import Runner

    cfg = RunConfig(run=out.name, domains=["retail_orders"], lengths=list(lengths), tasks_per_length=tasks,
                    agent=agent, sandbox={"backend": "inline"}, judges=judges or ["verifiable"],
                    output=str(out), concurrency=8)
    runner = Runner(cfg)
    summary = asyncio.run(runner.run(progress=False))
    return cfg, summary, list(runner.store)


@pytest.fixture(scope="session")
def noisy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("noisy") / "run"
    return run_small(out, {"kind": "noisy_oracle", "p": 0.3})


def llm_config(stub, **kw):
    from toolzoo.llm import LLMConfig

    return LLMConfig(base_url=stub.base_url, model="judge-stub", api_key="k", max_retries=1, backoff_base_s=0.01,
                     backoff_max_s=0.02, structured_retries=1, bad_response_retries=0, timeout_s=10, **kw)
