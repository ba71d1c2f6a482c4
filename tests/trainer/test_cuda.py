"""The trainer on a CUDA device: every algorithm's loop, decoding with the CPU generators the
trainer checkpoints, CPU/GPU agreement and checkpoints that load anywhere. Skipped where torch
sees no CUDA device (CI here); run on a GPU machine with ``pytest tests/trainer/test_cuda.py``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")

SFT = {"episodes": 6, "steps": 2, "batch_size": 4}  # 2 SFT steps: step 3 is inside the GRPO phase


def _train(out: Path, algorithm: str, resume: bool = False, **kw):
    """test_train_loop's small run, on CUDA."""
    from tests.trainer.test_train_loop import _config
    from toolzoo.trainer.loop import train

    cfg = _config(out, train="cuda", algorithm=algorithm, device="cuda", **{"sft": SFT, **kw})
    return train(cfg, resume=resume, progress=False)


@pytest.mark.parametrize("algorithm,extra", [
    ("sft", {}),
    ("grpo", {"beta": 0.04, "loss_type": "dapo", "eps_high": 0.28}),  # beta: a reference model on the GPU too
    ("pi_distill", {}),
    ("opsd", {"distill": {"teacher": "frozen_initial"}}),
])
def test_every_algorithm_trains_on_cuda(tmp_path, algorithm, extra):
    from transformers import AutoModelForCausalLM

    summary = _train(tmp_path, algorithm, **extra)
    assert summary["device"] == "cuda"
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(math.isfinite(r["loss"]) for r in rows)
    assert rows[-1]["eval"]["by_length"]["1"]["n"] == 2
    # a checkpoint written from GPU weights loads with plain transformers on the CPU
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "final")
    assert next(model.parameters()).device.type == "cpu"


def test_resume_on_cuda_restores_optimizer_state(tmp_path):
    # 2 SFT + 2 GRPO steps; the checkpoint at step 3 holds the GRPO phase's Adam state
    _train(tmp_path, "grpo", steps=2, checkpoint_every=3)
    summary = _train(tmp_path, "grpo", resume=True, steps=4, checkpoint_every=3)
    assert summary["steps"] == 6 and summary["device"] == "cuda"
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_sampling_on_cuda_is_reproducible_from_the_cpu_generator(tiny_ckpt):
    from toolzoo.agents.hf import HFAgent
    from toolzoo.core import Message

    msgs = [Message(role="user", content="Please refund my order o0042.")]
    runs = []
    for _ in range(2):
        agent = HFAgent(tiny_ckpt, device="cuda", seed=7, max_new_tokens=12)
        assert agent.generator.device.type == "cpu"  # what the trainer checkpoints
        runs.append([agent.respond(msgs, []).tokens.completion_ids for _ in range(3)])
    assert runs[0] == runs[1]
    assert len({tuple(x) for x in runs[0]}) > 1  # the stream advances between calls


def test_cpu_and_cuda_score_the_same_tokens(tiny_ckpt):
    from transformers import AutoModelForCausalLM

    from toolzoo.agents.hf import HFAgent
    from toolzoo.core import Message

    agent = HFAgent(tiny_ckpt, device="cuda", greedy=True, max_new_tokens=12)
    reply = agent.respond([Message(role="user", content="What is the status of order o0013?")], [])
    ids = torch.tensor([reply.tokens.prompt_ids + reply.tokens.completion_ids])
    cpu = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    with torch.no_grad():
        lp_cpu = torch.log_softmax(cpu(ids).logits.float(), -1)
        lp_gpu = torch.log_softmax(agent.model(ids.cuda()).logits.float(), -1).cpu()
    n = len(reply.tokens.completion_ids)
    targets = ids[0, -n:]
    on_cpu = lp_cpu[0, -n - 1:-1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(on_cpu, torch.tensor(reply.tokens.logprobs), atol=2e-3)
    assert torch.allclose(lp_cpu, lp_gpu, atol=2e-3)
