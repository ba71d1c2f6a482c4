"""Conversations -> token ids with an assistant-only loss mask.

Two routes, for two consumers:
- ``tokenize_conversation`` renders messages and tools through the tokenizer's chat template
  (SFT on stored trajectories). With ``{% generation %}`` markers in the template (toolzoo's
  tiny template, TRL's training templates) the mask is the template's own, exactly what TRL's
  ``SFTTrainer(assistant_only_loss=True)`` trains on; otherwise each assistant turn's span is
  found by rendering the conversation up to it with and without the turn (prefix diff).
- ``sequence_from_tokens`` stitches the ids a trainable policy actually sampled
  (``Message.tokens``) into one sequence (GRPO on multi-turn episodes): re-tokenising text can
  give different ids than were sampled, which would make the importance ratio wrong.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from toolzoo.agents.formats import ToolFormat, detect_format
from toolzoo.core import Message, ToolSpecView

_GENERATION = re.compile(r"{%-?\s*generation\s*-?%}")


class TokenizedConversation(BaseModel):
    input_ids: list[int]
    assistant_mask: list[int]  # 1 on tokens the assistant produced (content, calls, end of turn)
    logprobs: list[float] | None = None  # sampling log-probs where known (0.0 off the mask)
    drift_turns: int = 0  # stitched turns whose sampler saw a prompt other than the stitched prefix


def _template(tokenizer) -> str:
    t = tokenizer.chat_template
    return t if isinstance(t, str) else ""


def _render(tokenizer, msgs, tools, **kw) -> list[int]:
    out = tokenizer.apply_chat_template(msgs, tools=tools, tokenize=True, return_dict=True, **kw)
    return list(out["input_ids"])


def tokenize_conversation(
    tokenizer, messages: list[Message], tools: list[ToolSpecView] | None = None,
    tool_format: ToolFormat | None = None,
) -> TokenizedConversation:
    """Token ids of the whole conversation and its assistant-only mask. ``tool_format``: how
    tools and calls reach the template (default: what the template speaks, ``detect_format``)."""
    fmt = tool_format or detect_format(tokenizer)
    msgs, tl = fmt.chat_input(list(messages), tools, tokenizer)
    if _GENERATION.search(_template(tokenizer)):
        out = tokenizer.apply_chat_template(
            msgs, tools=tl, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        return TokenizedConversation(
            input_ids=list(out["input_ids"]), assistant_mask=list(out["assistant_masks"])
        )
    ids = _render(tokenizer, msgs, tl)
    mask = [0] * len(ids)
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        start = len(_render(tokenizer, msgs[:i], tl, add_generation_prompt=True)) if i else 0
        end = len(_render(tokenizer, msgs[: i + 1], tl))
        for k in range(start, min(end, len(ids))):
            mask[k] = 1
    return TokenizedConversation(input_ids=ids, assistant_mask=mask)


def sequence_from_tokens(messages: list[Message]) -> TokenizedConversation | None:
    """One sequence from the sampled ids of every assistant turn: each turn's prompt must
    extend the previous turn's prompt + completion (true when the template re-renders earlier
    turns unchanged). Returns None when a turn lacks tokens or the prefixes disagree; callers
    then fall back to ``tokenize_conversation`` (and recompute log-probs)."""
    ids: list[int] = []
    mask: list[int] = []
    logps: list[float] = []
    turns = [m for m in messages if m.role == "assistant"]
    if not turns:
        return None
    for m in turns:
        t = m.tokens
        if t is None or not t.completion_ids or t.prompt_ids[: len(ids)] != ids:
            return None
        new_prompt = t.prompt_ids[len(ids):]
        ids += new_prompt + t.completion_ids
        mask += [0] * len(new_prompt) + [1] * len(t.completion_ids)
        lp = t.logprobs if len(t.logprobs) == len(t.completion_ids) else [0.0] * len(t.completion_ids)
        logps += [0.0] * len(new_prompt) + list(lp)
    return TokenizedConversation(input_ids=ids, assistant_mask=mask, logprobs=logps)


def stitch_sampled(messages: list[Message], tokenizer, tools: list[ToolSpecView] | None = None,
                   tool_format: ToolFormat | None = None) -> TokenizedConversation | None:
    """One sequence from every assistant turn's sampled completion ids, joined by the
    template's tokens for the messages in between (``agents.tokens.delta_ids``): for episodes
    whose sampler re-rendered each prompt from text (an endpoint such as vLLM's server), where
    the prefix check of ``sequence_from_tokens`` fails. The completions are still exactly the
    ids sampled; ``drift_turns`` counts the turns whose sampler saw a different prompt (their
    sampling log-probs were computed in another context: importance ratios correct for it).
    None when a turn lacks ids or the template re-renders earlier turns differently."""
    from toolzoo.agents.hf import eos_ids_of
    from toolzoo.agents.tokens import delta_ids

    fmt = tool_format or detect_format(tokenizer)
    eos = eos_ids_of(tokenizer)
    ids: list[int] = []
    mask: list[int] = []
    logps: list[float] = []
    prev: int | None = None
    drift = 0
    for k, m in enumerate(messages):
        if m.role != "assistant":
            continue
        t = m.tokens
        if t is None or not t.completion_ids:
            return None
        if prev is None:
            new = list(t.prompt_ids)
        else:
            finished = messages[prev].tokens.completion_ids[-1] in eos
            new = delta_ids(tokenizer, fmt, messages[:k], prev, tools, eos, finished)
            if new is None:
                return None
        ids += new
        mask += [0] * len(new)
        logps += [0.0] * len(new)
        drift += t.prompt_ids != ids
        ids += t.completion_ids
        mask += [1] * len(t.completion_ids)
        logps += list(t.logprobs) if len(t.logprobs) == len(t.completion_ids) else [0.0] * len(t.completion_ids)
        prev = k
    if prev is None:
        return None
    return TokenizedConversation(input_ids=ids, assistant_mask=mask, logprobs=logps, drift_turns=drift)
