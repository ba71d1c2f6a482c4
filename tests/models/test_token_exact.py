"""Exact token-in/token-out on SmolLM2's real tokenizer and template: the ids a multi-turn
episode is trained on are the ids sampled, turn by turn, from the hf agent and from a local
OpenAI-compatible server that returns token ids (zero drift)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import uvicorn

from toolzoo.agents.hf import HFAgent, Sample
from toolzoo.agents.openai import OpenAIAgent
from toolzoo.core import Message, ToolSpecView
from toolzoo.llm import LLMConfig
from toolzoo.trainer.data import sequence_from_tokens, stitch_sampled, tokenize_conversation
from toolzoo.trainer.grpo import Rollout
from toolzoo.trainer.serve import build_app

TOOLS = [ToolSpecView(name="get_order", description="Look up an order by id.",
                      parameters={"type": "object", "properties": {"order_id": {"type": "string"}}})]
CALL = '{"name": "get_order", "arguments": {"order_id": "o0042"}}'


def start(tokens_note=""):
    return [Message(role="system", content="You help customers with orders." + tokens_note),
            Message(role="user", content="What is the status of order o0042?")]


def assert_trained_on_sampled(messages, seq):
    """Each turn's prompt is the sequence's prefix and its completion follows verbatim."""
    for m in messages:
        if m.role != "assistant":
            continue
        p, c = m.tokens.prompt_ids, m.tokens.completion_ids
        assert seq.input_ids[: len(p)] == p
        assert seq.input_ids[len(p): len(p) + len(c)] == c
        assert seq.assistant_mask[len(p): len(p) + len(c)] == [1] * len(c)
        assert seq.logprobs[len(p): len(p) + len(c)] == pytest.approx(m.tokens.logprobs)
    n = sum(len(m.tokens.completion_ids) for m in messages if m.role == "assistant")
    assert sum(seq.assistant_mask) == n


def char_ids(tok, text):
    """A valid but non-canonical tokenisation (one token per character): what a sampler may
    produce and re-tokenising its text would never give back."""
    return [i for ch in text for i in tok(ch, add_special_tokens=False)["input_ids"]]


def test_hf_agent_multi_turn_zero_drift(smollm2, smollm2_tokenizer):
    tok = smollm2_tokenizer
    agent = HFAgent(model=smollm2, tokenizer=tok, max_new_tokens=5, greedy=True)
    assert agent.format.name == "generic"
    msgs = start()
    msgs.append(agent.respond(msgs, TOOLS))  # sampled (cut off after 5 tokens)
    msgs.append(Message(role="user", content="Please look it up."))
    # a tool call whose sampled ids are not the canonical tokenisation of its text
    prompt = agent._prompt(msgs, TOOLS)
    ids = char_ids(tok, CALL) + [tok.eos_token_id]
    call = agent._message(msgs, prompt, Sample(completion_ids=ids, logprobs=[-0.5] * len(ids), finished=True))
    assert call.tool_calls[0].function.name == "get_order" and call.parse_errors == 0
    msgs += [call, Message(role="tool", tool_call_id=call.tool_calls[0].id, name="get_order",
                           content='{"status": "shipped"}')]
    msgs.append(agent.respond(msgs, TOOLS))
    msgs.append(Message(role="user", content="Thanks."))
    msgs.append(agent.respond(msgs, TOOLS))
    assert agent.continued == 3  # every prompt after the first continued the sampled ids

    seq = sequence_from_tokens(msgs)
    assert seq is not None
    assert_trained_on_sampled(msgs, seq)
    assert Rollout.from_messages(msgs, 1.0, tok, TOOLS).input_ids == seq.input_ids
    # re-tokenising the text would have trained on other ids than were sampled
    assert tokenize_conversation(tok, msgs, TOOLS).input_ids != seq.input_ids
    # a sampler that re-rendered a prompt from text (vLLM's server): the sampled ids are still
    # what is trained on, joined by the template's tokens, and the drifted turn is counted
    drifted = [m.model_copy(deep=True) for m in msgs]
    last = drifted[-1].tokens
    last.prompt_ids = tokenize_conversation(tok, msgs[:-1], TOOLS).input_ids + [1]
    assert sequence_from_tokens(drifted) is None
    st = stitch_sampled(drifted, tok, TOOLS)
    assert st.input_ids == seq.input_ids and st.drift_turns == 1
    assert stitch_sampled(msgs, tok, TOOLS).drift_turns == 0


@pytest.fixture
def server(smollm2, smollm2_tokenizer):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    agent = HFAgent(model=smollm2, tokenizer=smollm2_tokenizer, max_new_tokens=5)
    srv = uvicorn.Server(uvicorn.Config(build_app(agent, "smollm2"), host="127.0.0.1", port=port,
                                        log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", agent
    srv.should_exit = True
    th.join(timeout=10)


def test_openai_agent_against_server_zero_drift(server, smollm2_tokenizer):
    url, served = server
    cfg = LLMConfig(base_url=url, model="smollm2", api_key="none", temperature=0.7, max_tokens=5, timeout_s=120,
                    extra_body={"return_token_ids": True, "logprobs": True})

    async def episode():
        agent = OpenAIAgent(cfg)
        msgs = start()
        try:
            for follow in ("Please look it up.", "And order o0043?", None):
                reply = await agent.act(msgs, TOOLS)
                assert reply.tokens is not None and len(reply.tokens.logprobs) == len(reply.tokens.completion_ids)
                msgs.append(reply)
                if follow:
                    msgs.append(Message(role="user", content=follow))
        finally:
            await agent.aclose()
        return msgs

    msgs = asyncio.run(episode())
    assert served.continued == 2  # the server continued its own sampled ids, not the echoed text
    seq = sequence_from_tokens(msgs)
    assert seq is not None
    assert_trained_on_sampled(msgs, seq)
    assert stitch_sampled(msgs, smollm2_tokenizer, TOOLS).input_ids == seq.input_ids
