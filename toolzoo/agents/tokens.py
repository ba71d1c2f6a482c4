"""Exact token-in/token-out across turns.

A multi-turn episode's training sequence must be the ids the policy sampled, not a
re-tokenisation of their decoded text (which can give other ids and breaks importance
ratios). So the prompt of every turn after the first is built from ids: the previous turn's
prompt ids + its sampled completion ids, then the chat template's tokens for the messages
that came after it (tool results, the user's next message, the generation prompt). Those are
found by rendering the conversation as text with and without the new messages and cutting
after the previous turn's end-of-turn token (a special token, so tokenisation cannot merge
across the cut). The same function stitches a finished episode for training, so the
sequence trained on equals the prompts sampled from, turn by turn.
"""

from __future__ import annotations

from collections.abc import Callable

from toolzoo.core import Message, TokenInfo, ToolSpecView


def render_text(tokenizer, fmt, messages: list[Message], tools: list[ToolSpecView] | None,
                add_generation_prompt: bool) -> str:
    msgs, tl = fmt.chat_input(messages, tools, tokenizer)
    return tokenizer.apply_chat_template(msgs, tools=tl, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def render_ids(tokenizer, fmt, messages: list[Message], tools: list[ToolSpecView] | None) -> list[int]:
    """Prompt ids for the next assistant turn, rendered from scratch."""
    msgs, tl = fmt.chat_input(messages, tools, tokenizer)
    out = tokenizer.apply_chat_template(msgs, tools=tl, add_generation_prompt=True, tokenize=True,
                                        return_dict=True)
    return list(out["input_ids"])


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def delta_ids(tokenizer, fmt, messages: list[Message], k: int, tools: list[ToolSpecView] | None,
              eos_ids: list[int], finished: bool) -> list[int] | None:
    """The template's tokens after assistant turn ``messages[k]`` up to the next generation
    prompt; None when the template re-renders earlier turns differently (no shared prefix)."""
    before = render_text(tokenizer, fmt, messages[: k + 1], tools, add_generation_prompt=False)
    full = render_text(tokenizer, fmt, messages, tools, add_generation_prompt=True)
    if not full.startswith(before):
        return None
    cut = -1
    for e in eos_ids:
        s = tokenizer.decode([e])
        at = before.rfind(s)
        if at > cut:
            cut, eos_len = at, len(s)
    if cut < 0:
        return None
    # a finished turn's sampled ids end with the end-of-turn token; a cut-off one does not,
    # so the template's own end-of-turn goes into the delta
    start = cut + eos_len if finished else cut
    return _encode(tokenizer, full[start:])


def _turn_tokens(messages: list[Message], known: Callable[[list[Message]], TokenInfo | None] | None):
    """(index, TokenInfo) of the last assistant turn whose sampled ids are known."""
    for k in range(len(messages) - 1, -1, -1):
        m = messages[k]
        if m.role != "assistant":
            continue
        t = m.tokens if m.tokens is not None and m.tokens.completion_ids else (
            known(messages[: k + 1]) if known else None)
        if t is not None and t.completion_ids:
            return k, t
    return None


def next_prompt(tokenizer, fmt, messages: list[Message], tools: list[ToolSpecView] | None,
                eos_ids: list[int], known: Callable[[list[Message]], TokenInfo | None] | None = None,
                ) -> tuple[list[int], bool]:
    """(prompt ids for the next assistant turn, whether they continue sampled ids). ``known``
    looks up the tokens of an assistant turn that carries none (a server sees messages only)."""
    found = _turn_tokens(messages, known)
    if found is not None:
        k, t = found
        finished = t.completion_ids[-1] in eos_ids
        d = delta_ids(tokenizer, fmt, messages, k, tools, eos_ids, finished)
        if d is not None:
            return [*t.prompt_ids, *t.completion_ids, *d], True
    return render_ids(tokenizer, fmt, messages, tools), False


def fingerprint(messages: list[Message]) -> str:
    """A key for a conversation prefix that survives an OpenAI client's round trip (tool-call
    ids and token fields are ignored)."""
    import json

    rows = [(m.role, m.content or "", [(c.function.name, c.function.arguments) for c in m.tool_calls or []])
            for m in messages]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
