"""One stub server process for the whole llm test package; each test loads its own script."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from toolzoo.llm import LLMConfig
from toolzoo.testing import OpenAIStub, stub_fixture

openai_stub = stub_fixture(scope="session")


@pytest.fixture
def stub(openai_stub: OpenAIStub) -> OpenAIStub:
    openai_stub.load(None)  # empty script, empty request log
    return openai_stub


def fast_config(stub: OpenAIStub, **kw: Any) -> LLMConfig:
    """A config with tiny backoffs so retry tests take milliseconds."""
    base: dict[str, Any] = dict(model="stub-model", base_url=stub.base_url, api_key="sk-test",
                                timeout_s=2.0, max_retries=3, backoff_base_s=0.01,
                                backoff_max_s=0.05)
    base.update(kw)
    return LLMConfig(**base)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)
