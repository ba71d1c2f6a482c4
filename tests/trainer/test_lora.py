"""LoRA (peft): only the adapter trains; checkpoints hold the adapter and the merged model,
and the hf agent (hence serve-model) loads either with the same outputs."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from toolzoo.agents.hf import sample
from toolzoo.trainer.checkpoint import save_checkpoint
from toolzoo.trainer.data import TokenizedConversation
from toolzoo.trainer.lora import ADAPTER_DIR, LoRAConfig, apply_lora, is_peft
from toolzoo.trainer.sft import sft_step


class _Tok:
    """Just enough tokenizer for save_pretrained/agent construction."""

    pad_token_id, eos_token_id, chat_template = 0, 1, None

    def save_pretrained(self, path):
        pass


def tiny(tmp_path):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=61, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True, pad_token_id=0, eos_token_id=1)
    base = LlamaForCausalLM(cfg)
    base.save_pretrained(tmp_path / "base")
    return AutoModelForCausalLM.from_pretrained(tmp_path / "base")


def test_only_the_adapter_trains_and_both_forms_load(tmp_path):
    model = apply_lora(tiny(tmp_path), LoRAConfig(r=4, alpha=8))
    assert is_peft(model)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    seq = TokenizedConversation(input_ids=list(range(2, 20)), assistant_mask=[0] * 8 + [1] * 10)
    losses = [sft_step(model, opt, [seq], 0) for _ in range(5)]
    assert losses[-1] < losses[0]
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n

    save_checkpoint(tmp_path / "ckpt", model, _Tok())
    ids = torch.tensor([list(range(2, 14))])
    model.eval()
    with torch.no_grad():
        want = model(input_ids=ids).logits
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")  # plain transformers
        torch.testing.assert_close(merged(input_ids=ids).logits, want, atol=1e-5, rtol=1e-4)
        from toolzoo.trainer.lora import load_adapter

        adapter = load_adapter(tmp_path / "ckpt" / ADAPTER_DIR)  # on the base it names
        assert is_peft(adapter)
        torch.testing.assert_close(adapter(input_ids=ids).logits, want, atol=1e-5, rtol=1e-4)


def test_sampling_a_lora_model_merges_for_the_call_only(tmp_path):
    model = apply_lora(tiny(tmp_path), LoRAConfig(r=4, alpha=8))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # a non-trivial adapter
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    prompts = [[2, 3, 4, 5], [7, 8]]
    got = sample(model, prompts, max_new_tokens=6, eos_ids=[1], pad_id=0, greedy=True)
    ref_model = __import__("copy").deepcopy(model).merge_and_unload()
    want = sample(ref_model, prompts, max_new_tokens=6, eos_ids=[1], pad_id=0, greedy=True, fast=False)
    assert [s.completion_ids for s in got] == [s.completion_ids for s in want]
    for a, b in zip(got, want):
        torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4, rtol=0)
    for n, p in model.named_parameters():  # unmerged again
        torch.testing.assert_close(p, before[n], atol=1e-6, rtol=0, msg=n)


@pytest.mark.slow
def test_train_loop_with_lora_saves_both_forms_and_resumes(tmp_path):
    """``lora:`` in a Train config: SFT + GRPO train the adapter, micro-batched; checkpoints
    hold adapter/ and merged weights; --resume continues on base + adapter."""
    import json

    from tests.trainer.test_train_loop import _config
    from toolzoo.agents.hf import HFAgent
    from toolzoo.trainer.loop import train

    out = tmp_path / "lora"
    cfg = _config(out, lora={"r": 2, "alpha": 4}, micro_batch=1, gradient_checkpointing=True, checkpoint_every=2)
    summary = train(cfg, progress=False)
    assert summary["steps"] == 5
    for d in (out / "checkpoints" / "step_2", out / "final"):
        assert (d / "adapter" / "adapter_config.json").exists() and (d / "model.safetensors").exists()
    merged, adapter = HFAgent(out / "final"), HFAgent(out / "final" / "adapter")
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        torch.testing.assert_close(merged.model(input_ids=ids).logits, adapter.model.eval()(input_ids=ids).logits,
                                   atol=1e-5, rtol=1e-4)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    resumed = train(_config(out, lora={"r": 2, "alpha": 4}, micro_batch=1, steps=3, checkpoint_every=2),
                    resume=True, progress=False)
    assert resumed["steps"] == 6 and len(rows) == 5


def test_cpu_budget_stops_training_and_still_evaluates(tmp_path):
    import json

    from tests.trainer.test_train_loop import _config
    from toolzoo.trainer.loop import train

    out = tmp_path / "budget"
    summary = train(_config(out, steps=50, checkpoint_every=0, cpu_budget_s=0.01), progress=False)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert 1 <= summary["steps"] < 53 and rows[-1]["phase"] == "budget" and "eval" in rows[-1]
    assert (out / "final" / "config.json").exists()
