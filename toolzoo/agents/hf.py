"""A local Hugging Face causal LM as an agent (the trainable policy in episodes).

``sample`` is a lean batched decoding loop (KV cache, left padding, explicit position ids)
that returns the sampled ids and their log-probs: the GRPO step and the model server use it
too. It skips ``model.generate``'s per-token machinery, which dominates on tiny models.
Log-probs are under the distribution actually sampled from, log_softmax(logits / temperature)
(plain logits when greedy), which is what the GRPO step recomputes at the same temperature.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from toolzoo.agents import fastdecode
from toolzoo.agents.formats import ToolFormat, detect_format, get_format
from toolzoo.agents.tokens import fingerprint, next_prompt
from toolzoo.core import Message, Task, TokenInfo, ToolSpecView, Usage


class Sample(BaseModel):
    completion_ids: list[int]  # ends with the end-of-turn token when ``finished``
    logprobs: list[float]
    finished: bool


def sample(
    model,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    eos_ids: list[int],
    pad_id: int,
    temperature: float = 1.0,
    greedy: bool = False,
    generator=None,
    fast: bool = True,
) -> list[Sample]:
    """Continue each prompt (token ids) by up to ``max_new_tokens`` tokens, in one batch.
    ``fast``: use ``fastdecode`` for the model families it supports. A LoRA (peft) model
    decodes with its adapter merged into the base weights for the call (then unmerged), so
    the lean decoder runs on plain weights."""
    from toolzoo.trainer.lora import is_peft

    if is_peft(model) and fast:
        model.merge_adapter()
        try:
            return sample(model.get_base_model(), prompts, max_new_tokens=max_new_tokens, eos_ids=eos_ids,
                          pad_id=pad_id, temperature=temperature, greedy=greedy, generator=generator, fast=fast)
        finally:
            model.unmerge_adapter()
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    n, width = len(prompts), max(len(p) for p in prompts)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(prompts):  # left padding: every row's next token goes in one column
        ids[i, width - len(p):] = torch.tensor(p)
        attn[i, width - len(p):] = 1
    ids, attn = ids.to(device), attn.to(device)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    eos = torch.tensor(eos_ids, device=device)
    out_ids = torch.full((n, max_new_tokens), pad_id, dtype=torch.long, device=device)
    out_lp = torch.zeros((n, max_new_tokens), device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    lengths = torch.full((n,), max_new_tokens, dtype=torch.long, device=device)
    if fast and fastdecode.supports(model):
        decoder = fastdecode.FastDecoder(model, n, width + max_new_tokens)

        def forward(step_ids, step_pos, attn):
            return decoder.step(step_ids, step_pos, attn[:, -step_ids.shape[1]:].bool())
    else:
        cache = DynamicCache()
        # transformers 5.2x renamed ``past_key_values`` to ``cache``; older ones only know that
        params = inspect.signature(model.forward).parameters
        cache_kw = "cache" if "cache" in params else "past_key_values"

        def forward(step_ids, step_pos, attn):
            return model(
                input_ids=step_ids, attention_mask=attn, position_ids=step_pos,
                use_cache=True, logits_to_keep=1, **{cache_kw: cache},
            ).logits[:, -1, :]

    generator = _on_device(generator, device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            step_ids, step_pos = ids, pos
            for t in range(max_new_tokens):
                logits = forward(step_ids, step_pos, attn).float()
                if greedy:
                    logp = torch.log_softmax(logits, -1)
                    nxt = logp.argmax(-1)
                else:
                    logp = torch.log_softmax(logits / temperature, -1)
                    # Gumbel-max (argmax p / Exp(1)): same distribution as multinomial, cheaper
                    noise = torch.empty_like(logp).exponential_(generator=generator)
                    nxt = (logp - noise.log()).argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
                out_ids[:, t] = nxt
                out_lp[:, t] = torch.where(done, 0.0, logp.gather(-1, nxt.unsqueeze(-1)).squeeze(-1))
                hit = torch.isin(nxt, eos) & ~done
                lengths = torch.where(hit, t + 1, lengths)
                done = done | hit
                if bool(done.all()):
                    break
                step_ids = nxt.unsqueeze(-1)
                step_pos = step_pos[:, -1:] + 1
                # finished rows keep feeding pad tokens; their outputs are discarded
                attn = torch.cat([attn, torch.ones_like(attn[:, :1])], dim=-1)
    finally:
        model.train(was_training)
    out_ids, out_lp, lengths, done = out_ids.cpu(), out_lp.cpu(), lengths.cpu(), done.cpu()
    return [
        Sample(
            completion_ids=out_ids[i, : lengths[i]].tolist(),
            logprobs=out_lp[i, : lengths[i]].tolist(),
            finished=bool(done[i]),
        )
        for i in range(n)
    ]


def _on_device(generator, device):
    """The sampling noise's generator on the model's device. Callers hold CPU generators (the
    trainer checkpoints their state); for a model elsewhere a device generator is seeded from
    the CPU one, so the stream stays reproducible from that state and the noise never crosses
    the bus (a batch × vocabulary tensor per token)."""
    import torch

    if generator is None:
        return None
    here, there = generator.device, torch.device(device)
    if (here.type, here.index or 0) == (there.type, there.index or 0):
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def eos_ids_of(tokenizer, model=None) -> list[int]:
    ids = {tokenizer.eos_token_id}
    gen = getattr(model, "generation_config", None)
    extra = getattr(gen, "eos_token_id", None)
    ids |= set(extra if isinstance(extra, list) else [extra])
    return sorted(i for i in ids if i is not None)


def load(path: str | Path, device: str | None = None):
    """(model, tokenizer) from a local checkpoint or a registered model name
    (``toolzoo.models``: prepared into the cache on first use)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolzoo.models import resolve_model

    path = resolve_model(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if (Path(path) / "adapter_config.json").exists():  # a LoRA adapter: on the base it names
        from toolzoo.trainer.lora import load_adapter

        model = load_adapter(Path(path))
    else:
        model = AutoModelForCausalLM.from_pretrained(path)
    if device:
        model.to(device)
    return model, tokenizer


def chat_messages(messages: list[Message], tokenizer=None) -> list[dict[str, Any]]:
    """Messages as chat-template input. Arguments stay JSON strings (copied verbatim, so even
    malformed calls render as produced) when the template handles strings; templates that
    apply ``tojson`` unconditionally (Qwen2.5's) get objects instead."""
    template = getattr(tokenizer, "chat_template", None)
    keep_strings = tokenizer is None or (isinstance(template, str) and "is string" in template)
    out = []
    for m in messages:
        d = m.to_openai()
        if m.tool_calls and not keep_strings:
            for call in d["tool_calls"]:
                try:
                    call["function"]["arguments"] = json.loads(call["function"]["arguments"])
                except ValueError:
                    pass
        out.append(d)
    return out


def chat_tools(tools: list[ToolSpecView] | None) -> list[dict[str, Any]] | None:
    return [t.to_openai() for t in tools] if tools else None


def render_prompt(tokenizer, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
    """Prompt ids for the next assistant turn (``messages`` already in chat-template form)."""
    out = tokenizer.apply_chat_template(
        messages, tools=tools, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    return list(out["input_ids"])


def decode_completion(tokenizer, completion_ids: list[int], eos_ids: list[int]) -> str:
    ids = completion_ids[:-1] if completion_ids and completion_ids[-1] in eos_ids else completion_ids
    return tokenizer.decode(ids, skip_special_tokens=False)


@dataclass
class _Pending:
    prompt: list[int]
    key: tuple  # requests with equal keys decode in one batch
    future: Any


class HFAgent:
    """The Agent contract on a local transformers model; fills ``Message.tokens``.

    One agent object serves many concurrent episodes (the runner, the GRPO loop and the model
    server all share it): ``act`` calls that arrive together are decoded as one left-padded
    batch (up to ``max_batch``), which on CPU is ~7x the throughput of one-at-a-time decoding.
    Requests with their own ``generator`` (a seeded server request) decode alone, so their
    sample does not depend on what else was in flight."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model=None,
        tokenizer=None,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        greedy: bool = False,
        seed: int | None = None,
        device: str | None = None,
        max_batch: int = 64,
        tool_format: str | ToolFormat | None = None,
        remember: int = 4096,
    ) -> None:
        if isinstance(model, (str, Path)):  # `model: NAME` in a run config: a name or a path
            path, model = model, None
        if model is None or tokenizer is None:
            if path is None:
                raise ValueError("HFAgent needs a checkpoint path or model and tokenizer objects")
            model, tokenizer = load(path, device)
        import torch

        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.temperature, self.greedy = max_new_tokens, temperature, greedy
        self.max_batch = max_batch
        self.eos_ids = eos_ids_of(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        # one decode at a time on the shared model (``sample`` toggles eval/train mode)
        self._model_lock = threading.Lock()
        # the tool-call format: named, else what the chat template speaks (generic when it has no tools)
        self.format = (get_format(tool_format) if isinstance(tool_format, str)
                       else tool_format or detect_format(tokenizer))
        # sampled ids of recent replies by conversation fingerprint, for callers whose messages
        # come back without tokens (the model server): later prompts continue those ids exactly
        self._remember = remember
        self._seen: OrderedDict[str, TokenInfo] = OrderedDict()
        self.continued = 0  # prompts built from earlier sampled ids (token-in/token-out)
        self._pending: list[_Pending] = []
        self._worker: asyncio.Task | None = None
        self.batches = 0  # decode calls made by the batcher (for tests and stats)

    async def start(self, task: Task) -> None:  # never looks at the reference solution
        return None

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        return await self.agenerate(messages, tools)

    async def agenerate(
        self,
        messages: list[Message],
        tools: list[ToolSpecView],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        greedy: bool | None = None,
        generator=None,
    ) -> Message:
        """``respond`` through the batcher: concurrent calls share one decode."""
        prompt = self._prompt(messages, tools)
        params = self._params(max_new_tokens, temperature, greedy, generator)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        # a generator of its own: a batch of one (its key is unique to this request)
        key = params if generator is None else (*params, id(fut))
        self._pending.append(_Pending(prompt=prompt, key=key, future=fut))
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._worker = loop.create_task(self._drain())
        s = await fut
        return self._message(messages, prompt, s)

    async def _drain(self) -> None:
        while self._pending:
            # Let the other episodes' turns arrive: they are a few awaits away (tool calls,
            # checkpoints, the user's reply). Stop waiting once the queue stops growing.
            seen, still = -1, 0
            while still < 3 and len(self._pending) < self.max_batch:
                still = still + 1 if len(self._pending) == seen else 0
                seen = len(self._pending)
                await asyncio.sleep(0)
            key = self._pending[0].key
            batch = [r for r in self._pending if r.key == key][: self.max_batch]
            taken = {id(r) for r in batch}
            self._pending = [r for r in self._pending if id(r) not in taken]
            max_new, temperature, greedy, generator = key[:4]
            try:
                samples = await asyncio.to_thread(
                    self._sample, [r.prompt for r in batch], max_new, temperature, greedy, generator)
            except Exception as exc:  # every waiter of this batch gets the error
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)
                continue
            for r, s in zip(batch, samples):
                if not r.future.done():
                    r.future.set_result(s)

    def _prompt(self, messages: list[Message], tools: list[ToolSpecView]) -> list[int]:
        """The next turn's prompt ids: earlier turns' sampled ids plus the template's tokens
        after them (``tokens.next_prompt``), never a re-tokenisation of sampled text."""
        prompt, continued = next_prompt(self.tokenizer, self.format, messages, tools, self.eos_ids,
                                        known=lambda ms: self._seen.get(fingerprint(ms)))
        self.continued += continued
        return prompt

    def _params(self, max_new_tokens, temperature, greedy, generator) -> tuple:
        """One request's decode settings, in ``_sample``'s order: the keywords given, else the
        agent's defaults. ``agenerate`` batches requests whose settings are equal."""
        return (max_new_tokens or self.max_new_tokens,
                self.temperature if temperature is None else temperature,
                self.greedy if greedy is None else greedy,
                generator)

    def _sample(self, prompts, max_new_tokens, temperature, greedy, generator) -> list[Sample]:
        with self._model_lock:
            self.batches += 1
            return sample(
                self.model, prompts, max_new_tokens=max_new_tokens, eos_ids=self.eos_ids,
                pad_id=self.pad_id, temperature=temperature, greedy=greedy,
                generator=generator or self.generator,
            )

    def _message(self, messages: list[Message], prompt: list[int], s: Sample) -> Message:
        parsed = self.format.parse(decode_completion(self.tokenizer, s.completion_ids, self.eos_ids))
        tokens = TokenInfo(prompt_ids=prompt, completion_ids=s.completion_ids, logprobs=s.logprobs)
        msg = Message(
            role="assistant",
            content=parsed.content,
            tool_calls=parsed.tool_calls or None,
            tokens=tokens,
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(s.completion_ids)),
            parse_errors=len(parsed.parse_errors),
        )
        if self._remember:
            self._seen[fingerprint([*messages, msg])] = tokens
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        return msg

    def respond(
        self,
        messages: list[Message],
        tools: list[ToolSpecView],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        greedy: bool | None = None,
        generator=None,
    ) -> Message:
        """Synchronous ``act`` (render, sample, parse); keywords override the defaults."""
        prompt = self._prompt(messages, tools)
        (s,) = self._sample([prompt], *self._params(max_new_tokens, temperature, greedy, generator))
        return self._message(messages, prompt, s)


def episode_seed(seed: int, version: int, episode_id: str) -> int:
    """The sampling seed of one episode under one policy version: the same on every process
    (local training and each Ray worker derive it alike), different for every episode."""
    import hashlib

    digest = hashlib.blake2b(f"{seed}:{version}:{episode_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class SeededEpisode:
    """One episode of a shared :class:`HFAgent` sampling from its own generator (``rollout:
    {seed_per_episode: true}``): what it samples depends only on the seed, the policy and its
    own conversation, never on which episodes shared a decode batch or a process. The price:
    its turns decode alone (``agenerate`` batches only requests without a generator)."""

    def __init__(self, agent: HFAgent, seed: int):
        import torch

        self.agent, self.generator = agent, torch.Generator().manual_seed(seed)

    async def start(self, task: Task) -> None:
        await self.agent.start(task)

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        return await self.agent.agenerate(messages, tools, generator=self.generator)
