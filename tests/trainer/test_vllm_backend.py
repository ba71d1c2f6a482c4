"""The vLLM rollout backend needs a GPU and the vllm wheel; neither exists on CI here."""

from __future__ import annotations

import importlib.util

import pytest

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def test_clear_error_without_vllm(tmp_path):
    if HAS_VLLM:
        pytest.skip("vllm is installed")
    from toolzoo.trainer.config import RolloutConfig
    from toolzoo.trainer.vllm_backend import VLLMBackend

    with pytest.raises(RuntimeError, match="needs the vllm package"):
        VLLMBackend(tmp_path, None, None, RolloutConfig(backend="vllm"))


@pytest.mark.skipif(not (HAS_VLLM and _has_gpu()), reason="needs vllm and a CUDA GPU (not available here)")
def test_vllm_rollouts_and_weight_sync(tiny_ckpt, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolzoo.core import Message
    from toolzoo.trainer.config import RolloutConfig
    from toolzoo.trainer.vllm_backend import VLLMBackend

    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt).cuda()
    tok = AutoTokenizer.from_pretrained(tiny_ckpt)
    backend = VLLMBackend(tmp_path / "w", model, tok, RolloutConfig(backend="vllm", max_new_tokens=8))
    agent = backend.agent(greedy=True)
    first = agent.respond([Message(role="user", content="Hi")], [])
    assert first.tokens.completion_ids and len(first.tokens.logprobs) == len(first.tokens.completion_ids)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    backend.sync_weights(model)
    second = agent.respond([Message(role="user", content="Hi")], [])
    assert second.tokens.completion_ids != first.tokens.completion_ids
    backend.close()


def test_engine_weights_of_a_lora_policy_are_merged_under_base_names(tmp_path):
    """What ``sync_weights`` pushes for a LoRA policy (checked on CPU: no vLLM needed)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from toolzoo.trainer.lora import LoRAConfig, apply_lora
    from toolzoo.trainer.vllm_backend import engine_weights

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    base = LlamaForCausalLM(cfg)
    names = {n for n, _ in base.named_parameters()}
    model = apply_lora(base, LoRAConfig(r=2, alpha=4))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    merged = dict(engine_weights(model))
    assert set(merged) == names
    want = __import__("copy").deepcopy(model).merge_and_unload().state_dict()
    for n, t in merged.items():
        torch.testing.assert_close(t, want[n])
    # and the policy itself is unmerged again (the adapter still trains)
    assert not any(getattr(m, "merged", False) for m in model.modules())
