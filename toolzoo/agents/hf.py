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
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from toolzoo.agents import fastdecode
from toolzoo.agents.hermes import parse_reply
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
    ``fast``: use ``fastdecode`` for the model families it supports."""
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


def eos_ids_of(tokenizer, model=None) -> list[int]:
    ids = {tokenizer.eos_token_id}
    gen = getattr(model, "generation_config", None)
    extra = getattr(gen, "eos_token_id", None)
    ids |= set(extra if isinstance(extra, list) else [extra])
    return sorted(i for i in ids if i is not None)


def load(path: str | Path, device: str | None = None):
    """(model, tokenizer) from a local checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
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


class HFAgent:
    """The Agent contract on a local transformers model; fills ``Message.tokens``."""

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
    ) -> None:
        if model is None or tokenizer is None:
            if path is None:
                raise ValueError("HFAgent needs a checkpoint path or model and tokenizer objects")
            model, tokenizer = load(path, device)
        import torch

        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.temperature, self.greedy = max_new_tokens, temperature, greedy
        self.eos_ids = eos_ids_of(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._lock = asyncio.Lock()  # one forward pass at a time on the shared model

    async def start(self, task: Task) -> None:  # never looks at the reference solution
        return None

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        async with self._lock:
            return await asyncio.to_thread(self.respond, messages, tools)

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
        prompt = render_prompt(
            self.tokenizer, chat_messages(messages, self.tokenizer), chat_tools(tools)
        )
        (s,) = sample(
            self.model, [prompt],
            max_new_tokens=max_new_tokens or self.max_new_tokens,
            eos_ids=self.eos_ids, pad_id=self.pad_id,
            temperature=self.temperature if temperature is None else temperature,
            greedy=self.greedy if greedy is None else greedy,
            generator=generator or self.generator,
        )
        parsed = parse_reply(decode_completion(self.tokenizer, s.completion_ids, self.eos_ids))
        return Message(
            role="assistant",
            content=parsed.content,
            tool_calls=parsed.tool_calls or None,
            tokens=TokenInfo(prompt_ids=prompt, completion_ids=s.completion_ids, logprobs=s.logprobs),
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(s.completion_ids)),
        )
