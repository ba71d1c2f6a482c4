"""SFT conversations from the three sources of the Train format, and the corpus a tiny
model's tokenizer is trained on.

- ``oracle``: the oracle agent's episodes with the scripted user (every one succeeds);
- a ``.jsonl`` file in the SFT export format, ``{"messages": [...], "tools": [...]}`` per
  line with OpenAI-format messages and tools (``toolzoo export sft``);
- a run folder: its ``trajectories.jsonl``, kept when the outcome reward is >= ``min_score``
  (infra / user-simulator failures never), with the tools of the episode's domain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from toolzoo.core import Message, Task, ToolSpecView, Trajectory
from toolzoo.tools.zoo import get_domain
from toolzoo.core import counts_for_policy
from toolzoo.trainer.episodes import domain_tools, oracle_episodes
from toolzoo.trainer.serve import to_message, to_tool

Conversation = tuple[list[Message], list[ToolSpecView]]


def strip_tokens(messages: Sequence[Message]) -> list[Message]:
    return [m.model_copy(update={"tokens": None, "usage": None}) for m in messages]


def from_trajectories(trajs: Iterable[Trajectory], min_score: float,
                      tools_of) -> list[Conversation]:
    out = []
    for t in trajs:
        o = t.outcome
        if not counts_for_policy(o) or o.reward < min_score:
            continue
        out.append((strip_tokens(t.messages), tools_of(t.task.domain)))
    return out


def from_export(path: Path) -> list[Conversation]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(([to_message(m) for m in row["messages"]],
                        [to_tool(t) for t in row.get("tools") or []]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not an SFT export line: {exc}") from None
    return out


def _tools_resolver(domains: Sequence[str]):
    """Domain name (as stored in a trajectory) -> its tools, trying the configured domains
    (which may be YAML paths) first."""
    by_name = {get_domain(d).name: d for d in domains}

    def tools_of(name: str) -> list[ToolSpecView]:
        return domain_tools(by_name.get(name, name))

    return tools_of


def load_conversations(source: str, *, domains: Sequence[str], tasks: Sequence[Task] = (),
                       min_score: float = 1.0, user_mode: str = "per_turn", sandbox: Any = None) -> list[Conversation]:
    """Conversations for SFT; ``tasks`` are used by the ``oracle`` source (episodes played on
    ``sandbox``, a Run-format sandbox section; default inline)."""
    tools_of = _tools_resolver(domains)
    if source == "oracle":
        trajs = oracle_episodes(tasks, user_mode=user_mode,
                                sources={get_domain(d).name: d for d in domains}, sandbox=sandbox)
        return from_trajectories(trajs, min_score, tools_of)
    path = Path(source)
    if path.is_dir():
        store = path / "trajectories.jsonl"
        if not store.exists():
            raise FileNotFoundError(f"{path} has no trajectories.jsonl")
        trajs = (Trajectory.model_validate_json(line) for line in store.read_text().splitlines() if line.strip())
        return from_trajectories(trajs, min_score, tools_of)
    if path.exists():
        return from_export(path)
    raise FileNotFoundError(f"SFT source {source!r}: not 'oracle', a run folder or an SFT JSONL file")


def corpus_texts(domains: Sequence[str], conversations: Sequence[Conversation]) -> list[str]:
    """What a tiny tokenizer learns its words from: the domains' prompts and tool specs, and
    every text of the SFT conversations (asks, answers, tool calls and results)."""
    texts: list[str] = []
    for d in domains:
        dom = get_domain(d)
        texts.append(dom.spec.system_prompt or "")
        texts.append(dom.spec.description or "")
        texts.extend(json.dumps(t.to_openai()) for t in domain_tools(d))
    for messages, tools in conversations:
        for m in messages:
            if m.content:
                texts.append(m.content)
            for c in m.tool_calls or []:
                texts.append(f'{{"name": "{c.function.name}", "arguments": {c.function.arguments}}}')
        texts.extend(json.dumps(t.to_openai()) for t in tools)
    return [t for t in texts if t]
