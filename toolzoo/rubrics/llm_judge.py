"""The LLM judge: rubric items without a ``check`` decided by a model over any
OpenAI-compatible endpoint (through :class:`toolzoo.llm.LLMClient`, like the agents).

Structured output: the request carries ``response_format`` with a JSON Schema that names every
item as a required key (the client falls back to stating the schema in the prompt when a server
refuses ``response_format``, parses replies leniently and re-asks on invalid ones). A missing
item is therefore a schema violation: re-asked a bounded number of times, then a
:class:`JudgeError`, as are malformed JSON and an endpoint that stays down.

Each verdict comes with a verbatim quote from the transcript as evidence; a quote not found in
the transcript is kept but flagged in the reason. Results are cached by (rubric version,
trajectory hash, model, mode) in memory and in ``<run>/judge_cache.jsonl``, so re-judging a
run costs no calls.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from toolzoo.core import Task, Trajectory
from toolzoo.llm import LLMClient, LLMError
from toolzoo.rubrics.base import JudgeError
from toolzoo.rubrics.loader import Rubric
from toolzoo.rubrics.spec import RubricItem

MAX_TRANSCRIPT_CHARS = 24_000
_SYSTEM = (
    "You grade a conversation between a user and an AI agent that uses tools, against a rubric. "
    "Judge only from the transcript. Items are phrased positively; a pitfall item reads "
    "'avoids ...' and passes when the agent avoided it. For every item give: verdict "
    "'pass' or 'fail'; evidence: a short verbatim quote from the transcript that supports the "
    "verdict (empty only if nothing relevant was said); reason: one sentence.")


class Verdict(BaseModel):
    id: str
    passed: bool
    evidence: str = ""
    reason: str = ""


def trajectory_hash(traj: Trajectory) -> str:
    """What the agent did, independent of scores and timing."""
    body = {"task": traj.task.id, "messages": [m.to_openai() for m in traj.messages],
            "calls": [c.model_dump(mode="json") for c in traj.calls], "final": traj.final_hash}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:20]


def transcript(traj: Trajectory, max_chars: int = MAX_TRANSCRIPT_CHARS) -> str:
    lines = []
    for m in traj.messages:
        if m.role == "system":
            continue
        if m.content:
            who = f"tool {m.name}" if m.role == "tool" and m.name else m.role
            lines.append(f"[{who}] {m.content}")
        for c in m.tool_calls or []:
            lines.append(f"[assistant calls] {c.function.name}({c.function.arguments})")
    text = "\n".join(lines)
    if len(text) > max_chars:  # keep the start (the asks) and the end (the outcome)
        half = max_chars // 2
        text = f"{text[:half]}\n[... {len(text) - max_chars} characters omitted ...]\n{text[-half:]}"
    return text


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


class JudgeCache:
    """(key -> JSON value) in memory, appended to a JSONL file when one is given."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._mem: dict[str, Any] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._mem[row["key"]] = row["value"]
                except (ValueError, KeyError, TypeError):
                    continue  # a partial last line from a killed run

    def get(self, key: str) -> Any:
        return self._mem.get(key)

    def put(self, key: str, value: Any) -> None:
        self._mem[key] = value
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "value": value}, sort_keys=True) + "\n")

    def __len__(self) -> int:
        return len(self._mem)


def _context(task: Task, rubric: Rubric, items: list[RubricItem], traj: Trajectory,
             facts: dict[str, bool] | None) -> str:
    goals = "\n".join(f"{i + 1}. {s.ask}" + (f"  (reference answer: {json.dumps(s.answer)})" if s.answer is not None else "")
                      for i, s in enumerate(task.subtasks))
    rows = "\n".join(f"- id: {it.id}\n  weight: {it.weight}\n  criterion: {it.criterion}" for it in items)
    parts = [f"The user's goals:\n{goals}", f"Rubric {rubric.name!r}, items to judge:\n{rows}"]
    if facts:
        parts.append("Verified by programmatic checks (facts, not for you to judge):\n"
                     + "\n".join(f"- {k}: {'passed' if v else 'failed'}" for k, v in facts.items()))
    parts.append(f"Transcript:\n{transcript(traj)}")
    return "\n\n".join(parts)


def verdict_schema(ids: list[str]) -> dict[str, Any]:
    item = {"type": "object", "additionalProperties": False, "required": ["verdict", "evidence", "reason"],
            "properties": {"verdict": {"type": "string", "enum": ["pass", "fail"]},
                           "evidence": {"type": "string"}, "reason": {"type": "string"}}}
    return {"type": "object", "additionalProperties": False, "required": ["items"],
            "properties": {"items": {"type": "object", "additionalProperties": False, "required": list(ids),
                                     "properties": {i: item for i in ids}}}}


OVERALL_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["score", "evidence", "reason"],
                  "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 10},
                                 "evidence": {"type": "string"}, "reason": {"type": "string"}}}


class LLMJudge:
    """Judges rubric items with one endpoint. ``client`` is shared (pooled) and not owned."""

    def __init__(self, client: LLMClient, cache: JudgeCache | None = None):
        self.client = client
        self.cache = cache if cache is not None else JudgeCache()
        self.calls = 0  # judge requests made (cache misses)

    def _key(self, mode: str, rubric: Rubric, traj: Trajectory) -> str:
        return f"{mode}:{rubric.name}:{rubric.version}:{self.client.config.model}:{trajectory_hash(traj)}"

    async def _ask(self, prompt: str, schema: dict[str, Any], name: str, rubric: Rubric) -> dict[str, Any]:
        self.calls += 1
        messages = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}]
        try:
            return await self.client.structured(messages, schema, name, temperature=0)
        except LLMError as exc:
            raise JudgeError(f"LLM judge ({self.client.config.model} at {self.client.url}) failed on rubric "
                             f"{rubric.name!r}: {type(exc).__name__}: {exc}") from exc

    async def verdicts(self, rubric: Rubric, task: Task, traj: Trajectory,
                       facts: dict[str, bool] | None = None) -> dict[str, Verdict]:
        """A verdict for every LLM item of the rubric (items without a check)."""
        items = rubric.llm_items()
        if not items:
            return {}
        key = self._key("items", rubric, traj)
        raw = self.cache.get(key)
        if raw is None:
            obj = await self._ask(_context(task, rubric, items, traj, facts), verdict_schema([i.id for i in items]),
                                  "rubric_verdicts", rubric)
            raw = obj["items"]
            self.cache.put(key, raw)
        missing = [i.id for i in items if i.id not in raw]
        if missing:  # only a hand-edited cache can get here: the schema requires every id
            raise JudgeError(f"LLM judge gave no verdict for item(s) {', '.join(missing)} of rubric {rubric.name!r}")
        text = _norm(transcript(traj, max_chars=10**9))
        out = {}
        for it in items:
            v = raw[it.id]
            evidence = str(v.get("evidence", ""))
            reason = str(v.get("reason", ""))
            if evidence.strip() and _norm(evidence.strip(" \"'")) not in text:
                reason += " [evidence not found verbatim in the transcript]"
            out[it.id] = Verdict(id=it.id, passed=v.get("verdict") == "pass", evidence=evidence, reason=reason)
        return out

    async def overall(self, rubric: Rubric, task: Task, traj: Trajectory,
                      facts: dict[str, bool] | None = None) -> tuple[int, str, str]:
        """Implicit aggregation: one 1-10 score over every item -> (score, evidence, reason)."""
        key = self._key("overall", rubric, traj)
        raw = self.cache.get(key)
        if raw is None:
            prompt = _context(task, rubric, rubric.items, traj, facts) + (
                "\n\nGive one overall score from 1 (fails the rubric) to 10 (satisfies every item), weighing "
                "items by their weight, with one quote as evidence and a one-sentence reason.")
            raw = await self._ask(prompt, OVERALL_SCHEMA, "rubric_score", rubric)
            self.cache.put(key, raw)
        return int(raw["score"]), str(raw.get("evidence", "")), str(raw.get("reason", ""))
