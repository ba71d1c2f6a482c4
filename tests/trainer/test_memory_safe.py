"""Memory-safe learning: chunked log-probs/entropy equal the naive full-logits computation,
and micro-batches with gradient accumulation give the one-batch gradient."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from toolzoo.trainer.batching import naive_token_logprobs, token_logprobs
from toolzoo.trainer.data import TokenizedConversation
from toolzoo.trainer.grpo import GRPOConfig, Rollout, grpo_step
from toolzoo.trainer.sft import sft_step


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True, pad_token_id=0)
    return LlamaForCausalLM(cfg)


def batch(b=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    lens = [5 + i * 4 for i in range(b)]
    ids = torch.zeros(b, max(lens), dtype=torch.long)
    attn = torch.zeros_like(ids)
    for i, n in enumerate(lens):
        ids[i, :n] = torch.randint(1, 97, (n,), generator=g)
        attn[i, :n] = 1
    return ids, attn


@pytest.mark.parametrize("chunk", [1, 4, 7, 10_000])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_equals_naive(model, chunk, temperature):
    ids, attn = batch()
    mask = attn[:, 1:].float()
    a = copy.deepcopy(model)
    lp, ent = token_logprobs(model, ids, attn, temperature, entropy=True, chunk_tokens=chunk)
    ref_lp, ref_ent = naive_token_logprobs(a, ids, attn, temperature)
    torch.testing.assert_close(lp * mask, ref_lp * mask, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent * mask, ref_ent * mask, atol=1e-5, rtol=0)
    # the gradients too (the slices' logits are recomputed in backward)
    ((lp * mask).sum() + (ent * mask).sum()).backward()
    ((ref_lp * mask).sum() + (ref_ent * mask).sum()).backward()
    for (n, p), q in zip(model.named_parameters(), a.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=n)
        p.grad = None


def _rollouts():
    ids, attn = batch(b=4, seed=3)
    out = []
    for i in range(4):
        n = int(attn[i].sum())
        row = ids[i, :n].tolist()
        out.append(Rollout(input_ids=row, mask=[0, 0] + [1] * (n - 2), reward=float(i % 3),
                           logprobs=[-1.0 - 0.1 * k for k in range(n)]))
    return out


def _after_step(model, fn):
    m = copy.deepcopy(model)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    fn(m, opt)
    return [p.detach().clone() for p in m.parameters()]


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo", "gspo"])
def test_grpo_micro_batches_equal_one_batch(model, loss_type):
    rs = _rollouts()

    def run(micro, tis=None):
        cfg = GRPOConfig(loss_type=loss_type, group_size=2, micro_batch=micro, max_grad_norm=None, tis_cap=tis,
                         old_logprobs="sampled" if loss_type == "gspo" else "recompute")
        return _after_step(model, lambda m, o: grpo_step(m, o, rs, cfg, pad_id=0))

    whole = run(None)
    for micro in (1, 3):
        for p, q in zip(whole, run(micro)):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
    assert any(not torch.equal(p, q) for p, q in zip(whole, model.parameters()))  # it did learn
    if loss_type == "grpo":  # truncated IS changes the update, the same with micro-batches
        tis = run(None, tis=2.0)
        assert any(not torch.allclose(p, q) for p, q in zip(whole, tis))
        for p, q in zip(tis, run(1, tis=2.0)):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_sft_micro_batches_equal_one_batch(model):
    seqs = [TokenizedConversation(input_ids=r.input_ids, assistant_mask=r.mask) for r in _rollouts()]
    whole = _after_step(model, lambda m, o: sft_step(m, o, seqs, 0, None))
    for micro in (1, 3):
        part = _after_step(model, lambda m, o: sft_step(m, o, seqs, 0, None, micro_batch=micro))
        for p, q in zip(whole, part):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
