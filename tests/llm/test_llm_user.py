"""LLMUser against a real stub server process: what it is told, how it stops, and which of its
replies are recorded as user-simulator violations."""

from __future__ import annotations

import json

import pytest

from tests.llm.conftest import fast_config, run
from toolzoo.core import Message, Step, SubtaskInstance, Task, ToolCall
from toolzoo.envs.llm_user import STOP, LLMUser
from toolzoo.envs.user import UserReply, UserSimError, UserSimulator
from toolzoo.testing import OpenAIStub

TASK = Task(
    id="retail-1", domain="retail_orders", seed=3, length=2,
    subtasks=[
        SubtaskInstance(template="refund", bind={"o": "o0012"}, ask="Please refund my order o0012.",
                        solution=[Step(tool="refund_order", args={"order_id": "o0012"})]),
        SubtaskInstance(template="status_of", bind={"o": "o0031", "c": "c007"},
                        ask="What is the status of order o0031?",
                        # The solution uses a tool and an argument the user never hears about.
                        solution=[Step(tool="lookup_ledger", args={"ledger": "LEDGER-7781"}),
                                  Step(tool="get_order", args={"order_id": "o0031"})],
                        answer="in_transit_zq"),
    ],
    expected_final={"orders": {"o0012": {"status": "refunded_secret_marker"}}},
)


async def _respond(stub: OpenAIStub, messages: list[Message], task: Task = TASK,
                   **kw) -> tuple[UserReply, LLMUser]:
    user = LLMUser(fast_config(stub), persona=kw.pop("persona", None), **kw)
    try:
        await user.start(task)
        return await user.respond(messages), user
    finally:
        await user.aclose()


def test_is_a_user_simulator(stub: OpenAIStub) -> None:
    assert isinstance(LLMUser(fast_config(stub)), UserSimulator)


def test_opening_message(stub: OpenAIStub) -> None:
    stub.load([{"content": "Hi! Please refund my order o0012."}])
    reply, _ = run(_respond(stub, []))
    assert reply.message == Message(role="user", content="Hi! Please refund my order o0012.")
    assert not reply.stop and reply.violation is None
    sent = stub.bodies()[0]["messages"]
    assert sent[0]["role"] == "system" and sent[1]["role"] == "user"  # kickoff turn


def test_no_solution_leaks_into_the_request(stub: OpenAIStub) -> None:
    stub.load({"default": {"content": "ok"}})
    convo = [Message(role="user", content="Please refund my order o0012."),
             Message(role="assistant", content="Done.")]
    run(_respond(stub, convo, persona="A hurried shopper."))
    sent = json.dumps(stub.bodies()[0])
    asks_and_binds = ["Please refund my order o0012.", "What is the status of order o0031?",
                      "c007", "A hurried shopper."]
    assert all(text in sent for text in asks_and_binds)
    # Solution tools/args absent from the asks, the expected answer and final state never sent.
    for secret in ["refund_order", "lookup_ledger", "get_order", "LEDGER-7781", "ledger",
                   "in_transit_zq", "refunded_secret_marker", "order_id"]:
        assert secret not in sent, secret
    assert "tools" not in stub.bodies()[0]


def test_roles_flipped_and_tool_traffic_dropped(stub: OpenAIStub) -> None:
    stub.load([{"content": "Thanks."}])
    call = ToolCall.make("refund_order", {"order_id": "o0012"}, id="c1")
    convo = [Message(role="system", content="agent system prompt"),
             Message(role="user", content="Please refund my order o0012."),
             Message(role="assistant", content=None, tool_calls=[call]),
             Message(role="tool", tool_call_id="c1", name="refund_order", content='{"ok": 1}'),
             Message(role="assistant", content="Refunded o0012."),
             Message(role="assistant", content="Anything else?")]
    run(_respond(stub, convo))
    sent = stub.bodies()[0]["messages"]
    assert [(m["role"], m["content"]) for m in sent[2:]] == [
        ("assistant", "Please refund my order o0012."),
        ("user", "Refunded o0012.\n\nAnything else?")]
    assert "agent system prompt" not in json.dumps(sent)
    assert '{"ok": 1}' not in json.dumps(sent)


@pytest.mark.parametrize("text,expected", [(STOP, None), (f"Thanks, that's all! {STOP}",
                                                          "Thanks, that's all!")])
def test_stop_detection(stub: OpenAIStub, text: str, expected: str | None) -> None:
    stub.load([{"content": text}])
    reply, _ = run(_respond(stub, [Message(role="assistant", content="All done.")]))
    assert reply.stop
    assert (reply.message.content if reply.message else None) == expected
    assert reply.violation is None


def test_violation_when_user_names_a_solution_tool(stub: OpenAIStub) -> None:
    stub.load([{"content": "Just call refund_order with o0012, thanks."}])
    reply, _ = run(_respond(stub, []))
    assert reply.violation is not None and "refund_order" in reply.violation
    assert "solution" in reply.violation and not reply.stop


def test_violation_when_user_asks_outside_its_goals(stub: OpenAIStub) -> None:
    stub.load([{"content": "Also, please cancel order o9999 for me."}])
    reply, _ = run(_respond(stub, []))
    assert reply.violation is not None and "o9999" in reply.violation
    assert reply.message.content == "Also, please cancel order o9999 for me."


def test_ids_the_agent_mentioned_are_not_violations(stub: OpenAIStub) -> None:
    stub.load([{"content": "Yes, o0044 is the replacement, that's right."}])
    convo = [Message(role="user", content="Please refund my order o0012."),
             Message(role="assistant", content="I refunded it and created replacement o0044.")]
    reply, _ = run(_respond(stub, convo))
    assert reply.violation is None


def test_bound_values_and_asks_are_not_violations(stub: OpenAIStub) -> None:
    stub.load([{"content": "My customer id is c007. What's the status of O0031?"}])
    reply, _ = run(_respond(stub, []))
    assert reply.violation is None


def test_violation_checks_can_be_disabled(stub: OpenAIStub) -> None:
    stub.load([{"content": "call refund_order on o9999"}])
    reply, _ = run(_respond(stub, [], check_violations=False))
    assert reply.violation is None


def test_endpoint_failure_is_user_sim_error(stub: OpenAIStub) -> None:
    stub.load({"default": {"status": 503}})
    with pytest.raises(UserSimError, match="LLMUnavailable"):
        run(_respond(stub, []))
    assert len(stub.requests()) == 4


def test_empty_reply_retried_then_error(stub: OpenAIStub) -> None:
    stub.load([{"content": "   "}, {"content": "Please refund my order o0012."}])
    reply, _ = run(_respond(stub, []))
    assert reply.message.content == "Please refund my order o0012."
    stub.load({"default": {"content": ""}})
    with pytest.raises(UserSimError, match="empty"):
        run(_respond(stub, []))
    assert len(stub.requests()) == 2


def test_usage_kept_on_the_simulator_not_the_message(stub: OpenAIStub) -> None:
    stub.load([{"content": "hi o0012", "usage": {"prompt_tokens": 30, "completion_tokens": 3}}])
    reply, user = run(_respond(stub, []))
    assert reply.message.usage is None
    assert (user.usage.prompt_tokens, user.usage.completion_tokens) == (30, 3)
    assert user.client.usage == user.usage


def test_respond_before_start_is_an_error(stub: OpenAIStub) -> None:
    with pytest.raises(UserSimError):
        run(LLMUser(fast_config(stub)).respond([]))
