"""LLMClient against a real stub server process: retries, attribution, usage, structured output."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.llm.conftest import fast_config, run
from toolzoo.core import Message, ToolSpecView
from toolzoo.llm import (
    LLMBadResponse,
    LLMClient,
    LLMConfig,
    LLMContextOverflow,
    LLMRequestError,
    LLMStructuredError,
    LLMUnavailable,
)
from toolzoo.testing import OpenAIStub

HELLO = [Message(role="user", content="hello")]


async def _chat(cfg: LLMConfig, **kw):
    async with LLMClient(cfg) as client:
        return await client.chat(HELLO, **kw), client


def test_429_then_success_honours_retry_after(stub: OpenAIStub) -> None:
    stub.load([{"status": 429, "headers": {"Retry-After": "1"}}, {"content": "ok"}])
    result, _ = run(_chat(fast_config(stub)))
    reqs = stub.requests()
    assert result.message.content == "ok"
    assert len(reqs) == 2 and result.attempts == 2
    # The computed backoff is ~10 ms; only the server's Retry-After explains a 1 s gap.
    assert reqs[1]["t"] - reqs[0]["t"] >= 0.9


def test_500_twice_then_success(stub: OpenAIStub) -> None:
    stub.load([{"status": 500}, {"status": 503}, {"content": "third time"}])
    result, _ = run(_chat(fast_config(stub)))
    assert result.message.content == "third time"
    assert result.attempts == 3
    assert [r["served_by"] for r in stub.requests()] == ["step:0", "step:1", "step:2"]


def test_timeout_then_success(stub: OpenAIStub) -> None:
    stub.load([{"delay_s": 1.5, "content": "too late"}, {"content": "in time"}])
    result, _ = run(_chat(fast_config(stub, timeout_s=0.3)))
    assert result.message.content == "in time"
    assert len(stub.requests()) == 2


def test_permanent_500_exhausts_retries(stub: OpenAIStub) -> None:
    stub.load({"default": {"status": 500}})
    with pytest.raises(LLMUnavailable) as err:
        run(_chat(fast_config(stub, max_retries=3)))
    assert err.value.attempts == 4
    assert len(stub.requests()) == 4  # one try plus max_retries retries, no more
    assert "HTTP 500" in str(err.value)


def test_zero_retries_means_one_attempt(stub: OpenAIStub) -> None:
    stub.load({"default": {"status": 429, "headers": {"Retry-After": "0"}}})
    with pytest.raises(LLMUnavailable):
        run(_chat(fast_config(stub, max_retries=0)))
    assert len(stub.requests()) == 1


def test_4xx_is_not_retried(stub: OpenAIStub) -> None:
    stub.load({"default": {"status": 401, "body": {"error": {"message": "bad key"}}}})
    with pytest.raises(LLMRequestError) as err:
        run(_chat(fast_config(stub)))
    assert err.value.status == 401 and not isinstance(err.value, LLMContextOverflow)
    assert "bad key" in err.value.body
    assert len(stub.requests()) == 1


def test_context_overflow_is_recognised(stub: OpenAIStub) -> None:
    msg = "This model's maximum context length is 4096 tokens. However, you requested 9000."
    stub.load([{"status": 400, "body": {"error": {"message": msg}}}])
    with pytest.raises(LLMContextOverflow):
        run(_chat(fast_config(stub)))
    assert len(stub.requests()) == 1


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = LLMConfig(model="m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2,
                    backoff_base_s=0.01, timeout_s=1)
    with pytest.raises(LLMUnavailable) as err:
        run(_chat(cfg))
    assert err.value.attempts == 3 and "connection error" in str(err.value)


@pytest.mark.parametrize("bad", [{"raw": "this is not json {"}, {"json_body": {"id": "x"}},
                                 {"json_body": {"choices": []}}, {"json_body": [1, 2]}])
def test_garbage_body_retried_then_bad_response(stub: OpenAIStub, bad: dict) -> None:
    stub.load({"default": bad})
    with pytest.raises(LLMBadResponse) as err:
        run(_chat(fast_config(stub, bad_response_retries=2)))
    assert len(stub.requests()) == 3 and err.value.attempts == 3


def test_garbage_body_then_good_recovers(stub: OpenAIStub) -> None:
    stub.load([{"raw": "<html>gateway</html>"}, {"content": "fine"}])
    result, _ = run(_chat(fast_config(stub)))
    assert result.message.content == "fine" and result.attempts == 2


def test_usage_recorded_per_result_and_in_totals(stub: OpenAIStub) -> None:
    stub.load([{"content": "a", "usage": {"prompt_tokens": 11, "completion_tokens": 7}},
               {"content": "b", "usage": {"prompt_tokens": 5, "completion_tokens": 3}}])

    async def go():
        async with LLMClient(fast_config(stub)) as client:
            r1 = await client.chat(HELLO)
            r2 = await client.chat(HELLO)
            return r1, r2, client

    r1, r2, client = run(go())
    assert (r1.usage.prompt_tokens, r1.usage.completion_tokens) == (11, 7)
    assert r1.message.usage == r1.usage
    assert (r2.usage.prompt_tokens, r2.usage.completion_tokens) == (5, 3)
    assert (client.usage.prompt_tokens, client.usage.completion_tokens) == (16, 10)
    assert client.completions == 2 and client.requests == 2


def test_request_body_and_headers(stub: OpenAIStub) -> None:
    stub.load([{"content": "x"}])
    tool = ToolSpecView(name="get_order", description="Look up an order.",
                        parameters={"type": "object", "properties": {"order_id": {"type": "string"}}})
    cfg = fast_config(stub, temperature=0.2, max_tokens=64, seed=7, extra_body={"top_k": 5})
    run(_chat(cfg, tools=[tool], tool_choice="auto", seed=None))
    req = stub.requests()[0]
    body = req["body"]
    assert req["authorization"] == "Bearer sk-test"
    assert body["model"] == "stub-model"
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert body["tools"] == [{"type": "function", "function": tool.model_dump()}]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 64 and body["top_k"] == 5
    assert body["tool_choice"] == "auto" and "seed" not in body  # override None drops a field


def test_env_fallbacks(stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch) -> None:
    stub.load([{"content": "x"}])
    monkeypatch.setenv("MY_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url + "/")
    cfg = LLMConfig(model="m", api_key_env="MY_KEY")
    assert cfg.resolved_base_url() == stub.base_url
    run(_chat(cfg))
    assert stub.requests()[0]["authorization"] == "Bearer sk-env"
    assert "sk-env" not in cfg.model_dump_json() and "MY_KEY" in cfg.model_dump_json()


def test_api_key_is_secret_in_dumps() -> None:
    cfg = LLMConfig(model="m", api_key="sk-very-secret")
    assert "sk-very-secret" not in cfg.model_dump_json()
    assert cfg.resolved_api_key() == "sk-very-secret"


def test_concurrent_requests_share_one_client(stub: OpenAIStub) -> None:
    # Rules answer by content, so replies stay matched to requests whatever the arrival order.
    stub.load({"rules": [{"match": r"^ask (\d+)$", "reply": {"content": r"answer \1",
                                                                 "expand": True}}]})

    async def go():
        async with LLMClient(fast_config(stub, max_connections=8)) as client:
            results = await asyncio.gather(*[
                client.chat([Message(role="user", content=f"ask {i}")]) for i in range(40)])
            return [r.message.content for r in results]

    assert run(go()) == [f"answer {i}" for i in range(40)]
    assert len(stub.requests()) == 40


SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"},
                                           "why": {"type": "string"}},
          "required": ["score", "why"]}


async def _structured(cfg: LLMConfig, times: int = 1):
    async with LLMClient(cfg) as client:
        return [await client.structured(HELLO, SCHEMA, "verdict") for _ in range(times)]


def test_structured_with_fenced_json(stub: OpenAIStub) -> None:
    stub.load([{"content": 'Sure!\n```json\n{"score": 3, "why": "fine"}\n```\nHope it helps.'}])
    assert run(_structured(fast_config(stub))) == [{"score": 3, "why": "fine"}]
    body = stub.requests()[0]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"] == {"name": "verdict", "schema": SCHEMA}


def test_structured_falls_back_when_response_format_rejected(stub: OpenAIStub) -> None:
    stub.load([{"status": 400, "body": {"error": {"message": "response_format not supported"}}},
               {"content": 'The answer: {"score": 1, "why": "meh"} done'},
               {"content": '{"score": 2, "why": "ok"}'}])
    assert run(_structured(fast_config(stub), times=2)) == [{"score": 1, "why": "meh"},
                                                             {"score": 2, "why": "ok"}]
    bodies = stub.bodies()
    assert "response_format" in bodies[0]
    assert "response_format" not in bodies[1] and "response_format" not in bodies[2]
    assert '"score"' in bodies[1]["messages"][-1]["content"]  # schema stated in the prompt


def test_structured_repairs_invalid_reply(stub: OpenAIStub) -> None:
    stub.load([{"content": '{"score": "high"}'}, {"content": '{"score": 5, "why": "good"}'}])
    assert run(_structured(fast_config(stub))) == [{"score": 5, "why": "good"}]
    repair = stub.bodies()[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"score": "high"}'}
    assert "not usable" in repair[-1]["content"]


def test_structured_gives_up_after_bounded_retries(stub: OpenAIStub) -> None:
    stub.load({"default": {"content": "I refuse to answer in JSON."}})
    with pytest.raises(LLMStructuredError) as err:
        run(_structured(fast_config(stub, structured_retries=2)))
    assert len(stub.requests()) == 3 and "no JSON object" in str(err.value)


def test_one_client_across_successive_event_loops(stub: OpenAIStub) -> None:
    stub.load({"default": {"content": "ok"}})
    client = LLMClient(fast_config(stub))
    for _ in range(3):  # e.g. a synchronous gymnasium Env running asyncio.run per step
        assert run(client.chat(HELLO)).message.content == "ok"
    assert client.completions == 3
