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

from toolzoo.agents.hf import chat_messages, chat_tools
from toolzoo.core import Message, ToolSpecView

_GENERATION = re.compile(r"{%-?\s*generation\s*-?%}")


class TokenizedConversation(BaseModel):
    input_ids: list[int]
    assistant_mask: list[int]  # 1 on tokens the assistant produced (content, calls, end of turn)
    logprobs: list[float] | None = None  # sampling log-probs where known (0.0 off the mask)


def _template(tokenizer) -> str:
    t = tokenizer.chat_template
    return t if isinstance(t, str) else ""


def _render(tokenizer, msgs, tools, **kw) -> list[int]:
    out = tokenizer.apply_chat_template(msgs, tools=tools, tokenize=True, return_dict=True, **kw)
    return list(out["input_ids"])


def tokenize_conversation(
    tokenizer, messages: list[Message], tools: list[ToolSpecView] | None = None
) -> TokenizedConversation:
    """Token ids of the whole conversation and its assistant-only mask."""
    msgs, tl = chat_messages(messages, tokenizer), chat_tools(tools)
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
