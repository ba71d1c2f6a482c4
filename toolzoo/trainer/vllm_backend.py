"""The ``vllm`` rollout backend: a colocated vLLM engine on the training GPU.

Mirrors TRL 1.16's colocate mode (``trl/generation/vllm_generation.py``): ``vllm.LLM`` with
``distributed_executor_backend="external_launcher"`` so the worker lives in this process,
``enable_sleep_mode`` to hand memory back between rollouts, and after each optimizer step the
trainer's parameters are pushed with the model runner's ``load_weights`` and the prefix cache
is reset. Episodes use it through :class:`VLLMAgent`: HFAgent's rendering, batching and
Hermes parsing, with the decoding done by vLLM (prompt ids in, completion ids and their
log-probs under the sampling distribution out, so the GRPO step can use ``old_logprobs:
sampled``). Untested here (no GPU, no vllm wheel); the test that would run it is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from toolzoo.agents.hf import HFAgent, Sample


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise RuntimeError(
            "rollout.backend: vllm needs the vllm package (pip install vllm, on a machine with a "
            "GPU); use rollout.backend: hf otherwise") from exc
    return vllm


class VLLMAgent(HFAgent):
    """HFAgent whose decode step runs on the vLLM engine."""

    def __init__(self, backend: VLLMBackend, **kw: Any) -> None:
        super().__init__(model=backend.model, tokenizer=backend.tokenizer, **kw)
        self.backend = backend

    def _sample(self, prompts, max_new_tokens, temperature, greedy, generator) -> list[Sample]:
        return self.backend.generate(prompts, max_new_tokens=max_new_tokens,
                                     temperature=0.0 if greedy else temperature)


class VLLMBackend:
    def __init__(self, workdir: Path, model, tokenizer, rollout, seed: int = 0) -> None:
        vllm = _import_vllm()
        self.model, self.tokenizer, self.rollout = model, tokenizer, rollout
        workdir = Path(workdir)
        # vLLM loads from disk: the starting weights (later ones are pushed in memory)
        model.save_pretrained(workdir)
        tokenizer.save_pretrained(workdir)
        for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                     "MASTER_PORT": "29533"}.items():
            os.environ.setdefault(k, v)
        self.llm = vllm.LLM(
            model=str(workdir), gpu_memory_utilization=rollout.gpu_memory_utilization,
            enable_sleep_mode=True, distributed_executor_backend="external_launcher", seed=seed,
            logprobs_mode="processed_logprobs",  # log-probs after temperature: what we train against
        )
        self._vllm = vllm
        self.eos_ids = [tokenizer.eos_token_id]

    def agent(self, **kw: Any) -> VLLMAgent:
        kw.setdefault("max_new_tokens", self.rollout.max_new_tokens)
        kw.setdefault("temperature", self.rollout.temperature)
        return VLLMAgent(self, **kw)

    def generate(self, prompts: list[list[int]], *, max_new_tokens: int, temperature: float) -> list[Sample]:
        params = self._vllm.SamplingParams(temperature=temperature, max_tokens=max_new_tokens, logprobs=0)
        outs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        samples = []
        for o in outs:
            c = o.outputs[0]
            ids = list(c.token_ids)
            lps = [next(iter(d.values())).logprob if d else 0.0 for d in (c.logprobs or [{}] * len(ids))]
            samples.append(Sample(completion_ids=ids, logprobs=lps,
                                  finished=bool(ids) and ids[-1] in self.eos_ids))
        return samples

    def sync_weights(self, model) -> None:
        """Push the trainer's current parameters into the engine (after each optimizer step)."""
        runner_model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        runner_model.load_weights((name, p.detach()) for name, p in model.named_parameters())
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        del self.llm
