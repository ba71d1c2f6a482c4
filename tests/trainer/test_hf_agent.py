"""The batched sampler and the HF agent."""

from __future__ import annotations

import asyncio

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolzoo.agents.base import Agent
from toolzoo.agents.hf import HFAgent, sample
from toolzoo.core import Message
from toolzoo.trainer.batching import pad_right, token_logprobs


def _prompts(tok):
    texts = ["Please refund my order o0042.", "Hi", "What is the status of order o0013? Thanks, c017."]
    return [tok.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True,
                                    tokenize=True, return_dict=True)["input_ids"] for t in texts]


@pytest.mark.parametrize("fast", [True, False])
def test_greedy_matches_generate_with_left_padding(tiny_ckpt, fast):
    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    tok = AutoTokenizer.from_pretrained(tiny_ckpt)
    prompts = _prompts(tok)
    ours = sample(model, prompts, max_new_tokens=12, eos_ids=[tok.eos_token_id],
                  pad_id=tok.pad_token_id, greedy=True, fast=fast)
    for p, s in zip(prompts, ours):  # one at a time: no padding in the reference
        ref = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                             max_new_tokens=12, do_sample=False, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)[0, len(p):].tolist()
        assert s.completion_ids == ref[: len(s.completion_ids)]
        assert s.finished == (tok.eos_token_id in ref)


@pytest.mark.parametrize("fast", [True, False])
def test_sampled_logprobs_match_a_forward_pass(tiny_ckpt, fast):
    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    tok = AutoTokenizer.from_pretrained(tiny_ckpt)
    prompts = _prompts(tok)
    gen = torch.Generator().manual_seed(0)
    out = sample(model, prompts, max_new_tokens=10, eos_ids=[tok.eos_token_id],
                 pad_id=tok.pad_token_id, temperature=0.7, generator=gen, fast=fast)
    rows = [p + s.completion_ids for p, s in zip(prompts, out)]
    ids = pad_right(rows, tok.pad_token_id, torch.long)
    attn = pad_right([[1] * len(r) for r in rows], 0, torch.long)
    with torch.no_grad():
        lp = token_logprobs(model, ids, attn, temperature=0.7)
    for i, (p, s) in enumerate(zip(prompts, out)):
        ref = lp[i, len(p) - 1: len(p) - 1 + len(s.completion_ids)]
        assert torch.allclose(ref, torch.tensor(s.logprobs), atol=1e-4)


def test_agent_contract_and_tokens(tiny_ckpt):
    agent = HFAgent(tiny_ckpt, max_new_tokens=8, seed=3)
    assert isinstance(agent, Agent)
    msgs = [Message(role="user", content="Please refund my order o0042.")]

    async def go():
        await agent.start(None)
        return await agent.act(msgs, [])

    reply = asyncio.run(go())
    assert reply.role == "assistant" and reply.tokens is not None
    t = reply.tokens
    assert 0 < len(t.completion_ids) == len(t.logprobs) <= 8
    assert t.prompt_ids == agent.tokenizer.apply_chat_template(
        [m.to_openai() for m in msgs], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert reply.usage.completion_tokens == len(t.completion_ids)
    again = HFAgent(tiny_ckpt, max_new_tokens=8, seed=3).respond(msgs, [])
    assert again.tokens.completion_ids == t.completion_ids  # seeded sampling is reproducible


def test_concurrent_acts_are_batched_and_match_single_decoding(tiny_ckpt):
    """Many episodes at once share decodes; greedy replies equal one-at-a-time replies."""
    agent = HFAgent(tiny_ckpt, greedy=True, max_new_tokens=10)
    convs = [[Message(role="user", content=t)] for t in
             ["Please refund my order o0042.", "Hi", "What is the status of order o0013?", "Cancel o0007"]]

    async def all_at_once():
        return await asyncio.gather(*(agent.act(c, []) for c in convs))

    replies = asyncio.run(all_at_once())
    assert agent.batches == 1  # four turns, one decode
    for c, r in zip(convs, replies):
        alone = agent.respond(c, [])
        assert r.tokens.completion_ids == alone.tokens.completion_ids
        assert r.tokens.prompt_ids == alone.tokens.prompt_ids
