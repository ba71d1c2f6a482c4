"""The ``vllm`` rollout backend: a colocated vLLM engine on the training GPU.

Mirrors TRL 1.16's colocate mode (``trl/generation/vllm_generation.py``): ``vllm.LLM`` with
``distributed_executor_backend="external_launcher"`` so the worker lives in this process,
``enable_sleep_mode`` to hand memory back between rollouts, and after each optimizer step the
trainer's parameters are pushed with the model runner's ``load_weights`` and the prefix cache
is reset; the engine sleeps (level 1) between rollouts and wakes its weights for each sync
and its KV cache for each decode. Episodes use it through :class:`VLLMAgent`: HFAgent's rendering, batching and
its tool-call format, with the decoding done by vLLM (prompt ids in, completion ids and their
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
        self._asleep = False
        self.eos_ids = [tokenizer.eos_token_id]

    def agent(self, **kw: Any) -> VLLMAgent:
        kw.setdefault("max_new_tokens", self.rollout.max_new_tokens)
        kw.setdefault("temperature", self.rollout.temperature)
        return VLLMAgent(self, **kw)

    def generate(self, prompts: list[list[int]], *, max_new_tokens: int, temperature: float) -> list[Sample]:
        self._wake()
        params = self._vllm.SamplingParams(temperature=temperature, max_tokens=max_new_tokens, logprobs=0)
        try:
            outs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        finally:
            self._sleep()  # hand the KV cache (and weights, to CPU) back to the trainer
        samples = []
        for o in outs:
            c = o.outputs[0]
            ids = list(c.token_ids)
            lps = [next(iter(d.values())).logprob if d else 0.0 for d in (c.logprobs or [{}] * len(ids))]
            samples.append(Sample(completion_ids=ids, logprobs=lps,
                                  finished=bool(ids) and ids[-1] in self.eos_ids))
        return samples

    # sleep mode: level 1 offloads the weights to CPU memory and drops the KV cache while the
    # trainer steps; weights wake first (to receive the new parameters), the KV cache for decoding
    def _sleep(self) -> None:
        if not self._asleep:
            self.llm.sleep(level=1)
            self._asleep = True

    def _wake(self, tags: list[str] | None = None) -> None:
        if self._asleep:
            self.llm.wake_up(tags=tags)
            self._asleep = tags is not None and "kv_cache" not in tags

    def runner_model(self):
        """The engine's model: ``driver_worker.worker.model_runner.model`` in current vLLM (the
        driver is a worker wrapper), ``driver_worker.model_runner.model`` before."""
        driver = self.llm.llm_engine.model_executor.driver_worker
        return getattr(driver, "worker", driver).model_runner.model

    def sync_weights(self, model) -> None:
        """Push the trainer's current parameters into the engine (after each optimizer step);
        a LoRA policy pushes its merged weights under the base model's names."""
        self._wake(tags=["weights"])
        self.runner_model().load_weights(list(engine_weights(model)))
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        del self.llm


def engine_weights(model):
    """(name, tensor) pairs as a Hugging Face checkpoint names them. For a peft model the
    adapter is merged into the base weights for the copy and unmerged after."""
    from toolzoo.trainer.lora import is_peft

    if not is_peft(model):
        yield from ((n, p.detach()) for n, p in model.named_parameters())
        return
    model.merge_adapter()
    try:
        for n, p in model.get_base_model().named_parameters():
            if "lora_" in n:
                continue
            yield n.replace(".base_layer.", "."), p.detach().clone()
    finally:
        model.unmerge_adapter()
