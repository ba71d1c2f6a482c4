"""RaR-style rubric generation (Rubrics as Rewards, arXiv 2507.17746): an LLM writes 7-20
weighted items for one task from its goals, reference trace and reference answers.

The reply (JSON, schema-constrained through :meth:`LLMClient.structured`) becomes rubric YAML
that must pass the same loader as hand-written rubrics (schema, CEL compiles, unique ids) plus
one more rule: no item may simply restate the reference solution. A rejected draft is shown
back to the model with its problems, a bounded number of times.

Generated rubrics are stored with the run as ``<run>/rubrics/<task id>.yaml`` carrying their
content hash as ``version``, and frozen: once the file exists it is loaded, never regenerated,
so re-judging a run uses exactly the same rubric (and hits the judge cache).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

from toolzoo.config import LoadError, Problems, parse_yaml
from toolzoo.core import Task, ToolSpecView
from toolzoo.llm import LLMClient, LLMError
from toolzoo.rubrics.checks import CHECK_VARIABLES
from toolzoo.rubrics.loader import Rubric, dump_rubric, load_rubric, load_rubric_text, rubric_hash
from toolzoo.rubrics.spec import WEIGHTS, RubricSpec

MIN_ITEMS, MAX_ITEMS = 7, 20


class GenerationError(Exception):
    """No valid rubric after the bounded attempts (or the endpoint failed)."""


def rubric_name(task: Task) -> str:
    return "auto_" + re.sub(r"[^A-Za-z0-9_.-]", "_", task.id)


def _render_value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def restates_solution(text: str, task: Task) -> str | None:
    """Why ``text`` (a criterion or check) restates the reference solution, or None.

    Restating means: it spells out a reference call literally (``tool(...)`` or the tool name
    next to its arguments as JSON), or — for traces of two or more calls — it names every
    reference call in order, each tool followed by all its argument values. Naming the one
    entity a goal is about ("refunded order o0042") is a criterion, not a restatement."""
    low = text.lower()
    steps = [st for s in task.subtasks for st in s.solution]
    for st in steps:
        if re.search(re.escape(st.tool.lower()) + r"\s*\(", low):
            return f"it spells out the reference call {st.tool}(...)"
        if st.args and json.dumps(st.args, sort_keys=True).lower() in low and st.tool.lower() in low:
            return f"it spells out the reference call {st.tool} {json.dumps(st.args, sort_keys=True)}"
    if len(steps) >= 2:
        pos = 0
        for st in steps:
            for token in [st.tool, *(_render_value(v) for v in st.args.values())]:
                found = low.find(token.lower(), pos)
                if found < 0:
                    return None
                pos = found + len(token)
        return "it lists the whole reference call sequence with its arguments"
    return None


def _schema() -> dict[str, Any]:
    item = {"type": "object", "required": ["id", "criterion", "weight"], "additionalProperties": False,
            "properties": {"id": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                           "criterion": {"type": "string", "minLength": 1},
                           "weight": {"anyOf": [{"type": "string", "enum": list(WEIGHTS)},
                                                {"type": "number", "exclusiveMinimum": 0}]},
                           "check": {"type": "string"}}}
    return {"type": "object", "required": ["items"], "additionalProperties": False,
            "properties": {"items": {"type": "array", "minItems": MIN_ITEMS, "maxItems": MAX_ITEMS, "items": item}}}


_SYSTEM = f"""You write grading rubrics for AI agents that use tools to serve a user.
Given a task (the user's goals, a reference tool-call trace and reference answers), write
{MIN_ITEMS}-{MAX_ITEMS} rubric items that a grader can check on the agent's conversation and final state.
Each item: id (snake_case), criterion (one sentence, phrased positively), weight: essential
(required for success), important, optional, or pitfall (a common mistake, phrased "Avoids ...").
Cover the outcome of every goal, correct answers, communication (confirming, explaining) and pitfalls
(wrong records, extra writes, invented facts). Do NOT restate the reference trace: never list the
reference calls with their arguments; describe what must be true instead.
Optionally give `check`: a CEL boolean expression that verifies the item without an LLM, over the
variables {', '.join(CHECK_VARIABLES)}: final/initial are the state maps (final.<collection>[key].<field>),
task.bind[i] the i-th goal's bindings, task.answers[i] its reference answer, calls a list of
{{name, args, error}} (error null on success), messages a list of {{role, content}}; function said(v)
is true when the agent stated v. CEL does not mix int and double. Leave check out when unsure."""


def _prompt(task: Task, domain_description: str | None, tools: list[ToolSpecView] | None) -> str:
    goals = []
    for i, s in enumerate(task.subtasks):
        trace = "; ".join(f"{st.tool} {json.dumps(st.args, sort_keys=True)}" for st in s.solution) or "(no calls)"
        goals.append(f"{i + 1}. {s.ask}\n   bindings (task.bind[{i}]): {json.dumps(s.bind, sort_keys=True)}\n"
                     f"   reference trace: {trace}\n   reference answer: {json.dumps(s.answer)}")
    parts = [f"Domain: {task.domain}" + (f" — {domain_description}" if domain_description else "")]
    if tools:
        parts.append("Tools: " + "; ".join(f"{t.name}: {t.description}" for t in tools))
    parts.append("Goals, in order:\n" + "\n".join(goals))
    if task.touched:
        parts.append(f"Records the reference changes (task.touched): {json.dumps(task.touched, sort_keys=True)}")
    return "\n\n".join(parts)


def validate_generated(items: list[dict[str, Any]], task: Task, file: str) -> tuple[Rubric, str]:
    """The draft as a loaded rubric and its YAML text; LoadError listing every problem."""
    spec_data = {"rubric": rubric_name(task), "applies_to": {"domain": task.domain, "task": task.id},
                 "aggregation": "explicit", "items": items}
    try:
        spec = RubricSpec.model_validate(spec_data)
    except ValueError:
        spec = None
    text = dump_rubric(spec) if spec is not None else json.dumps(spec_data, indent=1)
    rubric = load_rubric_text(text, file)  # schema + CEL, with lines in the YAML we will store
    problems = Problems(parse_yaml(text, file)[1])
    for i, item in enumerate(rubric.items):
        for field in ("criterion", "check"):
            value = getattr(item, field)
            if value and (why := restates_solution(value, task)):
                problems.add(("items", i, field), f"restates the reference solution: {why}")
    problems.raise_if_any()
    spec = rubric.spec.model_copy(update={"version": rubric_hash(rubric.spec)})
    text = dump_rubric(spec)
    rubric = load_rubric_text(text, file)
    return rubric, text


async def generate_rubric(client: LLMClient, task: Task, *, domain_description: str | None = None,
                          tools: list[ToolSpecView] | None = None, attempts: int = 3,
                          file: str = "<generated>") -> tuple[Rubric, str]:
    """Ask ``client`` for a rubric for ``task``; (rubric, YAML text) or GenerationError."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": _SYSTEM},
                                      {"role": "user", "content": _prompt(task, domain_description, tools)}]
    problems = ""
    for _ in range(max(1, attempts)):
        try:
            obj = await client.structured(messages, _schema(), "rubric_items")
        except LLMError as exc:
            raise GenerationError(f"rubric generation for {task.id} ({client.config.model} at {client.url}) "
                                  f"failed: {type(exc).__name__}: {exc}") from exc
        try:
            return validate_generated(obj["items"], task, file)
        except LoadError as exc:
            problems = str(exc)
        messages += [{"role": "assistant", "content": json.dumps(obj)},
                     {"role": "user", "content": f"That rubric was rejected:\n{problems}\n"
                                                 "Reply with the whole corrected JSON object."}]
    raise GenerationError(f"rubric generation for {task.id}: no valid rubric after {attempts} attempt(s): {problems}")


class RubricStore:
    """Generated rubrics of one run: ``<run>/rubrics/<task id>.yaml``, generated once, frozen.
    Concurrent trials of one task wait for a single generation."""

    def __init__(self, run_dir: str | Path, client: LLMClient | None, *,
                 describe: Any = None, attempts: int = 3):
        self.dir = Path(run_dir) / "rubrics"
        self.client = client
        self.describe = describe  # task -> (domain description, tool views); optional
        self.attempts = attempts
        self._locks: dict[str, asyncio.Lock] = {}
        self._loaded: dict[str, Rubric] = {}

    def path_for(self, task: Task) -> Path:
        return self.dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', task.id)}.yaml"

    async def get(self, task: Task) -> Rubric:
        if task.id in self._loaded:
            return self._loaded[task.id]
        lock = self._locks.setdefault(task.id, asyncio.Lock())
        async with lock:
            if task.id in self._loaded:
                return self._loaded[task.id]
            path = self.path_for(task)
            if path.exists():  # frozen: re-judging reuses the stored rubric
                try:
                    rubric = load_rubric(path)
                except LoadError as exc:
                    raise GenerationError(f"stored rubric {path} no longer loads: {exc}") from exc
            else:
                if self.client is None:
                    raise GenerationError(f"no stored rubric {path} and no generator endpoint configured")
                desc, tools = self.describe(task) if self.describe else (None, None)
                rubric, text = await generate_rubric(self.client, task, domain_description=desc, tools=tools,
                                                     attempts=self.attempts, file=str(path))
                header = (f"# Generated for task {task.id} by {self.client.config.model}; version = content hash.\n"
                          "# Frozen: re-judging this run reuses this file. Edit it and the version changes.\n")
                self.dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".yaml.tmp")
                tmp.write_text(header + text, encoding="utf-8")
                os.replace(tmp, path)
            self._loaded[task.id] = rubric
            return rubric
