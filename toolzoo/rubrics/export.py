"""Judge-filtered SFT data (``toolzoo export sft RUN --min-score X``).

One JSONL line per passing trajectory: ``{"messages": [...], "tools": [...], "meta": {...}}`` in
the OpenAI chat format — assistant ``tool_calls`` with ``function.arguments`` as a JSON string,
tool results as ``role: tool`` messages with ``tool_call_id`` — and the domain's tools as OpenAI
function definitions. TRL's ``SFTTrainer`` reads it directly (``load_dataset("json", ...)``: it
renders ``messages`` with ``tools`` through the tokenizer's chat template), and toolzoo's own
trainer reads it through :func:`read_sft` -> ``tokenize_conversation``. ``args_as="object"``
writes arguments as objects instead, for chat templates that apply ``tojson`` to them.

A trajectory passes when its episode was judged (no infra / user-sim / judge failure) and its
score — ``outcome.reward`` (the combined reward), or ``scores[score_name].value`` — is at least
``min_score``. Trailing non-assistant messages (the user's goodbye) are dropped: nothing to learn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml

from toolzoo.core import Message, ToolSpecView, Trajectory, counts_for_policy
from toolzoo.tools.zoo import get_domain


def iter_trajectories(run_dir: str | Path):
    path = Path(run_dir) / "trajectories.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (is {run_dir} a run folder?)")
    with path.open("rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                yield Trajectory.model_validate_json(line)


def passes(traj: Trajectory, min_score: float, score_name: str | None = None) -> bool:
    o = traj.outcome
    if not counts_for_policy(o):  # infra, user_sim, judge, harness: no trusted reward
        return False
    if score_name is None:
        return o.reward >= min_score
    score = traj.scores.get(score_name)
    return score is not None and score.value >= min_score


class _Tools:
    def __init__(self, run_dir: Path):
        self._by_name: dict[str, list[dict[str, Any]]] = {}
        cfg = run_dir / "config.yaml"
        domains = []
        if cfg.exists():  # file domains are named in the run's config, not in the task
            domains = (yaml.safe_load(cfg.read_text()) or {}).get("domains") or []
        for d in domains:
            try:
                self._add(get_domain(d))
            except Exception:  # noqa: BLE001 - a moved file: fall back to the name below
                continue

    def _add(self, dom) -> None:
        self._by_name[dom.name] = [ToolSpecView(name=t.name, description=t.description,
                                                parameters=t.parameters).to_openai() for t in dom.spec.tools]

    def of(self, domain: str) -> list[dict[str, Any]]:
        if domain not in self._by_name:
            try:
                self._add(get_domain(domain))
            except Exception:  # noqa: BLE001
                self._by_name[domain] = []
        return self._by_name[domain]


def sft_messages(messages: list[Message], args_as: Literal["string", "object"] = "string") -> list[dict[str, Any]]:
    out = [m.to_openai() for m in messages]
    while out and out[-1]["role"] != "assistant":
        out.pop()
    if args_as == "object":
        for m in out:
            for call in m.get("tool_calls") or []:
                try:
                    call["function"]["arguments"] = json.loads(call["function"]["arguments"] or "{}")
                except ValueError:
                    pass  # malformed arguments stay text, as the model produced them
    return out


def export_sft(run_dir: str | Path, out: str | Path, min_score: float, score_name: str | None = None, *,
               args_as: Literal["string", "object"] = "string") -> int:
    """Write the passing trajectories of a run to ``out`` (JSONL); returns how many."""
    run_dir, out = Path(run_dir), Path(out)
    tools = _Tools(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for traj in iter_trajectories(run_dir):
            if not passes(traj, min_score, score_name):
                continue
            messages = sft_messages(traj.messages, args_as)
            if not messages:
                continue
            row = {"messages": messages, "tools": tools.of(traj.task.domain),
                   "meta": {"episode_id": traj.episode_id, "domain": traj.task.domain,
                            "length": traj.task.length, "reward": traj.outcome.reward if traj.outcome else None,
                            "scores": {k: v.value for k, v in traj.scores.items()}}}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, out)
    return n


def read_sft(path: str | Path) -> list[tuple[list[Message], list[ToolSpecView]]]:
    """An exported file as (messages, tools) pairs: what ``toolzoo.trainer`` tokenizes."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        messages = []
        for m in row["messages"]:
            m = dict(m)
            for call in m.get("tool_calls") or []:
                if not isinstance(call["function"].get("arguments"), str):
                    call["function"]["arguments"] = json.dumps(call["function"]["arguments"])
            messages.append(Message.model_validate(m))
        tools = [ToolSpecView.model_validate(t["function"]) for t in row.get("tools") or []]
        rows.append((messages, tools))
    return rows
