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
