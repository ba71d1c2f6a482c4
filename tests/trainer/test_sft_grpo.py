"""SFT drives the loss down; a GRPO step moves probability towards the rewarded token."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolzoo.agents.hf import HFAgent, sample
from toolzoo.trainer.grpo import GRPOConfig, Rollout, grpo_step
from toolzoo.trainer.sft import sft_loss
from toolzoo.trainer.data import tokenize_conversation

from .conftest import toy_conversations


def test_sft_loss_goes_down(sft_result, tiny_ckpt):
    path, losses = sft_result
    assert losses[-1] < 0.2 * losses[0]
    tok = AutoTokenizer.from_pretrained(path)
    seqs = [tokenize_conversation(tok, m, t) for m, t in toy_conversations()]
    with torch.no_grad():
        before = sft_loss(AutoModelForCausalLM.from_pretrained(tiny_ckpt), seqs, tok.pad_token_id)
        after = sft_loss(AutoModelForCausalLM.from_pretrained(path), seqs, tok.pad_token_id)
    assert after < 0.2 * before


def test_sft_model_calls_the_tool_greedily(sft_result):
    path, _ = sft_result
    agent = HFAgent(path, greedy=True, max_new_tokens=48)
    msgs, tools = toy_conversations(["o0042"])[0]
    reply = agent.respond(msgs[:1], tools)
    assert reply.tool_calls and reply.tool_calls[0].name == "refund_order"
    assert reply.tool_calls[0].parsed_args() == {"order_id": "o0042"}
    assert reply.tokens.completion_ids[-1] == agent.tokenizer.eos_token_id
    assert len(reply.tokens.logprobs) == len(reply.tokens.completion_ids)


def _prob_of(model, prompt, token):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt])).logits[0, -1]
    return torch.softmax(logits.float(), -1)[token].item()


def test_grpo_step_raises_rewarded_token(tiny_ckpt):
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    tok = AutoTokenizer.from_pretrained(tiny_ckpt)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Say refund"}],
                                     add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    target = tok.encode("refund", add_special_tokens=False)[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = _prob_of(model, prompt, target)
    cfg = GRPOConfig(group_size=8, loss_type="dapo")
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        # half the group forced to start with the target token: a real reward signal
        samples = sample(model, [prompt] * 8, max_new_tokens=4, eos_ids=[tok.eos_token_id],
                         pad_id=tok.pad_token_id, generator=gen)
        rollouts = []
        for i, s in enumerate(samples):
            comp = ([target] if i % 2 == 0 else []) + s.completion_ids
            rollouts.append(Rollout.from_completion(prompt, comp, reward=float(comp[0] == target)))
        stats = grpo_step(model, opt, rollouts, cfg, pad_id=tok.pad_token_id)
        assert stats.tokens > 0 and not stats.skipped
    after = _prob_of(model, prompt, target)
    assert after > 2 * before, (before, after)


def test_grpo_dynamic_sampling_skips_flat_groups(tiny_ckpt):
    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    rollouts = [Rollout.from_completion([1, 2, 3], [4, 5], reward=1.0) for _ in range(4)]
    stats = grpo_step(model, opt, rollouts, GRPOConfig(group_size=4, dynamic_sampling=True))
    assert stats.skipped and stats.groups_kept == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_grpo_with_reference_kl(tiny_ckpt):
    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    ref = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-2)
    rollouts = [Rollout.from_completion([1, 2, 3], [4 + i, 5], reward=float(i)) for i in range(4)]
    cfg = GRPOConfig(group_size=4, beta=0.1, loss_type="gspo")
    first = grpo_step(model, opt, rollouts, cfg, ref_model=ref)
    second = grpo_step(model, opt, rollouts, cfg, ref_model=ref)
    assert first.kl == 0.0 and second.kl > 0.0  # the policy moved away from the reference
