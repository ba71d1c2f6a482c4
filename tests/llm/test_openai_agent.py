"""The openai agent against a real stub server process: what it sends, what it returns, and
which failures are the agent's (returned as messages) versus infrastructure (AgentError)."""

from __future__ import annotations

import pytest

from tests.llm.conftest import fast_config, run
from toolzoo.agents.base import Agent, AgentError
from toolzoo.agents.openai import OpenAIAgent, validate_tool_call
from toolzoo.core import Message, Task, ToolCall, ToolSpecView
from toolzoo.llm import LLMClient
from toolzoo.testing import OpenAIStub

TOOLS = [
    ToolSpecView(name="get_order", description="Look up an order.",
                 parameters={"type": "object", "properties": {"order_id": {"type": "string"}},
                             "required": ["order_id"]}),
    ToolSpecView(name="refund_order", description="Refund a delivered order."),
]
NAMES = [t.name for t in TOOLS]
TASK = Task(id="t", domain="d", seed=0, length=0, subtasks=[])


async def _act(stub: OpenAIStub, messages: list[Message] | None = None,
               cfg: dict | None = None, **agent_kw) -> tuple:
    agent = OpenAIAgent(fast_config(stub, **(cfg or {})), **agent_kw)
    try:
        await agent.start(TASK)
        msg = await agent.act(messages or [Message(role="user", content="status of o0012?")],
                              TOOLS)
        return msg, agent
    finally:
        await agent.aclose()


def test_is_an_agent(stub: OpenAIStub) -> None:
    assert isinstance(OpenAIAgent(fast_config(stub)), Agent)


def test_sends_conversation_and_tools_in_openai_format(stub: OpenAIStub) -> None:
    stub.load([{"content": "It is delivered."}])
    call = ToolCall.make("get_order", {"order_id": "o0012"}, id="call_1")
    history = [Message(role="system", content="Be helpful."),
               Message(role="user", content="status of o0012?"),
               Message(role="assistant", content=None, tool_calls=[call]),
               Message(role="tool", tool_call_id="call_1", name="get_order",
                       content='{"status": "delivered"}')]
    msg, _ = run(_act(stub, history))
    body = stub.requests()[0]["body"]
    assert body["messages"] == [m.to_openai() for m in history]
    assert body["tools"] == [t.to_openai() for t in TOOLS]
    assert msg.role == "assistant" and msg.content == "It is delivered."


def test_malformed_arguments_returned_untouched(stub: OpenAIStub) -> None:
    bad = '{"order_id": "o0012"'  # truncated: no closing brace
    stub.load([{"tool_calls": [{"name": "get_order", "arguments": bad, "id": "call_x"}]}])
    msg, _ = run(_act(stub))
    (call,) = msg.tool_calls
    assert call.id == "call_x" and call.function.name == "get_order"
    assert call.function.arguments == bad
    error = validate_tool_call(call, NAMES)
    assert error is not None
    assert "'get_order'" in error and "not valid JSON" in error and "line 1" in error


def test_unknown_tool_name_returned_untouched(stub: OpenAIStub) -> None:
    stub.load([{"tool_calls": [{"name": "delete_everything", "arguments": {}}]}])
    msg, _ = run(_act(stub))
    (call,) = msg.tool_calls
    assert call.function.name == "delete_everything"
    error = validate_tool_call(call, TOOLS)  # ToolSpecViews work as well as names
    assert error is not None and "unknown tool 'delete_everything'" in error
    assert "get_order" in error and "refund_order" in error


def test_several_calls_keep_order_and_ids(stub: OpenAIStub) -> None:
    stub.load([{"tool_calls": [{"name": "get_order", "arguments": {"order_id": "o1"}},
                               {"name": "refund_order", "arguments": '{"order_id": "o2"}'}]}])
    msg, _ = run(_act(stub))
    assert [c.name for c in msg.tool_calls] == ["get_order", "refund_order"]
    assert [c.parsed_args() for c in msg.tool_calls] == [{"order_id": "o1"}, {"order_id": "o2"}]
    assert len({c.id for c in msg.tool_calls}) == 2
    assert all(validate_tool_call(c, NAMES) is None for c in msg.tool_calls)


@pytest.mark.parametrize("args,fragment", [("[1, 2]", "must be a JSON object, got a JSON array"),
                                           ('"o1"', "got a JSON string"),
                                           ("{'a': 1}", "not valid JSON")])
def test_validate_tool_call_rejects_non_objects(args: str, fragment: str) -> None:
    call = ToolCall(id="c", function={"name": "get_order", "arguments": args})
    error = validate_tool_call(call, NAMES)
    assert error is not None and fragment in error and "'get_order'" in error


def test_validate_tool_call_accepts_empty_arguments() -> None:
    assert validate_tool_call(ToolCall(id="c", function={"name": "refund_order",
                                                         "arguments": ""}), NAMES) is None


def test_garbage_text_is_a_normal_message(stub: OpenAIStub) -> None:
    stub.load([{"content": "asdf ]]} <tool_call> ??? lorem"}])
    msg, _ = run(_act(stub))
    assert msg.content == "asdf ]]} <tool_call> ??? lorem" and msg.tool_calls is None


@pytest.mark.parametrize("bad", [{"raw": "{not json"}, {"json_body": {"object": "error"}}])
def test_garbage_body_is_agent_error(stub: OpenAIStub, bad: dict) -> None:
    stub.load({"default": bad})
    with pytest.raises(AgentError, match="LLMBadResponse"):
        run(_act(stub))
    assert len(stub.requests()) == 3  # retried (bad_response_retries=2) before giving up


def test_permanent_server_error_is_agent_error(stub: OpenAIStub) -> None:
    stub.load({"default": {"status": 502}})
    with pytest.raises(AgentError, match="LLMUnavailable") as err:
        run(_act(stub))
    assert len(stub.requests()) == 4  # 1 + max_retries
    assert err.value.__cause__ is not None


def test_transient_errors_are_invisible_to_the_episode(stub: OpenAIStub) -> None:
    stub.load([{"status": 429, "headers": {"Retry-After": "0"}}, {"status": 500},
               {"delay_s": 1.0, "content": "late"},
               {"tool_calls": [{"name": "get_order", "arguments": {"order_id": "o0012"}}]}])
    msg, _ = run(_act(stub, None, cfg={"timeout_s": 0.3}))
    assert msg.tool_calls[0].parsed_args() == {"order_id": "o0012"}
    assert len(stub.requests()) == 4


def test_usage_recorded_on_message_and_agent(stub: OpenAIStub) -> None:
    stub.load([{"content": "a", "usage": {"prompt_tokens": 40, "completion_tokens": 4}},
               {"content": "b", "usage": {"prompt_tokens": 50, "completion_tokens": 6}}])

    async def go():
        agent = OpenAIAgent(fast_config(stub))
        await agent.start(TASK)
        m1 = await agent.act([Message(role="user", content="hi")], TOOLS)
        m2 = await agent.act([Message(role="user", content="hi")], TOOLS)
        await agent.aclose()
        return m1, m2, agent

    m1, m2, agent = run(go())
    assert (m1.usage.prompt_tokens, m1.usage.completion_tokens) == (40, 4)
    assert (m2.usage.prompt_tokens, m2.usage.completion_tokens) == (50, 6)
    assert (agent.usage.prompt_tokens, agent.usage.completion_tokens) == (90, 10)


def test_context_overflow_is_the_agents_failure_by_default(stub: OpenAIStub) -> None:
    overflow = {"status": 400, "body": {"error": {"message": "maximum context length exceeded",
                                                  "code": "context_length_exceeded"}}}
    stub.load([overflow])
    msg, _ = run(_act(stub))
    assert msg.role == "assistant" and msg.content == "" and not msg.tool_calls
    stub.load([overflow])
    with pytest.raises(AgentError, match="context overflow"):
        run(_act(stub, context_overflow="infra"))


def test_system_prompt_prepended_only_when_missing(stub: OpenAIStub) -> None:
    stub.load({"default": {"content": "ok"}})
    run(_act(stub, system_prompt="You are a shop assistant."))
    run(_act(stub, [Message(role="system", content="Own prompt."),
                    Message(role="user", content="hi")], system_prompt="You are a shop assistant."))
    first, second = stub.bodies()
    assert first["messages"][0] == {"role": "system", "content": "You are a shop assistant."}
    assert [m["content"] for m in second["messages"]] == ["Own prompt.", "hi"]


def test_shared_client_is_not_closed_by_an_agent(stub: OpenAIStub) -> None:
    stub.load({"default": {"content": "ok"}})

    async def go():
        async with LLMClient(fast_config(stub)) as client:
            a, b = OpenAIAgent(client=client), OpenAIAgent(client=client)
            await a.act([Message(role="user", content="1")], TOOLS)
            await a.aclose()
            return await b.act([Message(role="user", content="2")], TOOLS)

    assert run(go()).content == "ok"


def test_token_info_from_vllm_shaped_responses():
    """vLLM's ``return_token_ids`` fields and ``logprobs.content`` become ``Message.tokens``."""
    from toolzoo.agents.openai import token_info

    raw = {"prompt_token_ids": [1, 2, 3],
           "choices": [{"message": {"role": "assistant", "content": "hi"}, "token_ids": [7, 8],
                        "logprobs": {"content": [{"token": "h", "logprob": -0.5}, {"token": "i", "logprob": -1.0}]}}]}
    t = token_info(raw)
    assert t.prompt_ids == [1, 2, 3] and t.completion_ids == [7, 8] and t.logprobs == [-0.5, -1.0]
    raw["choices"][0]["logprobs"] = None  # ids without log-probs
    assert token_info(raw).logprobs == []
    assert token_info({"choices": [{"message": {}}]}) is None  # a plain endpoint
    assert token_info({"choices": []}) is None
