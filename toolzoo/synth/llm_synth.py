"""LLM domain synthesis (Kimi K2's hierarchy): categories -> domains -> full domain YAML.

1. **Categories**: the given list, or ``n_categories`` proposed by the model (structured).
2. **Domains**: per category, ``domains_per_category`` application domains (name, description),
   structured output.
3. **Domain YAML**: per domain, the model writes the whole file; the prompt carries the format
   spec and a hand-written example domain. The reply is validated
   (:mod:`toolzoo.synth.validate`: loads, every tool reachable, the oracle solves generated
   tasks at lengths 1-8, unique name, no near-duplicate of an existing tool). On failure the
   errors go back to the model in the same conversation, at most ``repair_attempts`` times;
   then the domain is discarded. Accepted domains are written to ``out/<name>.yaml``.

Model calls run concurrently (``concurrency``); validation and acceptance are serialised, so
the near-duplicate check always sees every domain accepted before.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from toolzoo.core import Message
from toolzoo.llm import LLMClient, LLMError
from toolzoo.synth.report import DomainRecord, SynthReport
from toolzoo.synth.validate import ExistingTool, ValidationResult, existing_tools, validate_domain_async
from toolzoo.tools.zoo import ZOO_DIR, builtin_names, get_domain

FORMAT_SPEC = """\
A domain is one YAML file (one stateful tool domain). Top-level keys:
- domain: identifier (letters, digits, _); category: text; description: one sentence;
  system_prompt (optional): rules the assistant must follow.
- state: collections of keyed records: `<collection>: {key: id, schema: <JSON Schema of a record,
  type object, with properties; list every field in required>}`.
- seed: how each collection is filled deterministically: `<collection>: {count: N, fields: {<field>: GEN}}`
  with GEN exactly one of: {pattern: "x{i:03d}"} (Python format over the 0-based index i; use it for keys),
  {choice: [..]}, {int: [lo, hi]}, {ref: <collection seeded earlier>} (a random key of it), {value: constant}.
  Every field of the record schema must be generated, and generated values must satisfy the schema.
- tools: list of {name, description, parameters (JSON Schema, type object, with required),
  effects}. Effects run in order, all-or-nothing:
    {require: "<CEL bool>", error: "<template>"}   fail the call with the message when false
    {set: {collection: C, key: "<CEL>", field: F, value: "<CEL>"}}   (F is not the key field)
    {insert: {collection: C, record: "<CEL map with every field>"}}
    {delete: {collection: C, key: "<CEL>"}}
    {return: "<CEL>"}   the tool's result
  CEL sees `args` (the call's arguments) and `state` (state.<collection>[key].<field>). Write string
  literals in single quotes inside CEL. Check existence first: require "args.x_id in state.xs".
  Integer arguments: use int(args.amount) in arithmetic.
- subtasks: goal templates; a task chains several. Each: {id, bind: {var: "<CEL>"}, ask: "text with
  {var} placeholders", solution: [{tool: name, args: {param: "<CEL over the bound vars>"}}],
  answer: "<CEL evaluated after the solution>" (only for questions)}. Bindings use
  pick(<list>) to choose a random element, e.g. pick(state.orders.filter(k, state.orders[k].status ==
  'delivered')); `prev` holds the previous subtask's bindings for chained goals (e.g. bind o: "prev.o").
  Constants in solution args are written as YAML numbers, not strings.
Rules: every tool must be used by some subtask's solution; every subtask must either change state
or have an answer; an answer must be a single value (a string, number or boolean, not a list);
bindings must select only records for which the solution succeeds (guards must hold).
"""

DOMAIN_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"domains": {"type": "array", "items": {
        "type": "object", "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
        "required": ["name", "description"]}}},
    "required": ["domains"],
}
CATEGORY_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"categories": {"type": "array", "items": {"type": "string"}}},
    "required": ["categories"],
}
_FENCE = re.compile(r"```(?:ya?ml)?[ \t]*\r?\n(.*?)```", re.S)
_IDENT = re.compile(r"[^a-z0-9_]+")


class SynthParams(BaseModel):
    categories: list[str] | None = None
    n_categories: int = Field(3, ge=1)
    domains_per_category: int = Field(2, ge=1)
    tools_per_domain: int = Field(5, ge=1)
    repair_attempts: int = Field(2, ge=0)
    concurrency: int = Field(4, ge=1)
    lengths: list[int] = Field(default_factory=lambda: list(range(1, 9)))
    seeds: list[int] = Field(default_factory=lambda: [0, 1])
    near_dup_threshold: float = 0.85
    example_domain: str = "retail_orders"


def identifier(name: str) -> str:
    ident = _IDENT.sub("_", name.strip().lower()).strip("_") or "domain"
    return ident if not ident[0].isdigit() else f"d_{ident}"


def extract_yaml(text: str) -> str:
    """The YAML in a reply: the first fenced block, else the whole text."""
    m = _FENCE.search(text or "")
    return (m.group(1) if m else (text or "")).strip() + "\n"


def domain_prompt(name: str, description: str, category: str, params: SynthParams) -> str:
    example = (ZOO_DIR / f"{params.example_domain}.yaml").read_text()
    return (
        f"Write the complete domain YAML for the domain `{name}` (category: {category}).\n"
        f"Description: {description}\n\n"
        f"It needs about {params.tools_per_domain} tools with real operational semantics (lookups, state "
        f"changes guarded by `require`, counters, relations), state collections with seeds, and goal "
        f"templates (subtasks) that use every tool: questions with answers, requests that change state, and "
        f"at least one template chained to the previous one through `prev`.\n\n"
        f"FORMAT:\n{FORMAT_SPEC}\nEXAMPLE DOMAIN:\n```yaml\n{example}```\n\n"
        f"Reply with only the YAML for `{name}` in one ```yaml code block."
    )


def repair_prompt(name: str, result: ValidationResult) -> str:
    return (f"Domain `{name}` failed validation with these problems:\n{result.error_text()}\n\n"
            f"Fix every problem and reply with the complete corrected YAML for `{name}` in one ```yaml code block.")


class LLMSynthesizer:
    def __init__(self, client: LLMClient, params: SynthParams, out_dir: str | Path, *,
                 existing_domains: list[Any] | None = None):
        self.client = client
        self.params = params
        self.out = Path(out_dir)
        zoo = existing_domains if existing_domains is not None else [get_domain(n) for n in builtin_names()]
        self.taken: set[str] = {d.spec.domain for d in zoo}
        self.existing: list[ExistingTool] = existing_tools(zoo)
        self.report = SynthReport(mode="llm")
        self._accept = asyncio.Lock()
        self._sem = asyncio.Semaphore(params.concurrency)

    async def run(self) -> SynthReport:
        started = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        categories = self.params.categories or await self._categories()
        self.report.categories = categories
        planned = await asyncio.gather(*(self._domains(c) for c in categories))
        seen: set[str] = set()
        jobs = []
        for category, domains in zip(categories, planned):
            for name, description in domains:
                if name in seen:  # the model proposed the same name twice: one candidate
                    continue
                seen.add(name)
                jobs.append(self._domain(name, description, category))
        await asyncio.gather(*jobs)
        self.report.domains.sort(key=lambda d: d.name)
        self.report.count_reasons()
        self.report.seconds = round(time.perf_counter() - started, 3)
        self.report.write(self.out / "synth_report.json")
        return self.report

    async def _categories(self) -> list[str]:
        reply = await self.client.structured([Message(role="user", content=(
            f"Propose {self.params.n_categories} distinct categories of software applications whose "
            f"operations an assistant could perform through tools (e.g. commerce, healthcare). One or two words each."))],
            CATEGORY_SCHEMA, "categories")
        return [identifier(c) for c in reply["categories"]][: self.params.n_categories]

    async def _domains(self, category: str) -> list[tuple[str, str]]:
        n = self.params.domains_per_category
        async with self._sem:
            reply = await self.client.structured([Message(role="user", content=(
                f"Propose {n} application domains for the category '{category}': stateful services "
                f"with records and operations (e.g. for commerce: an online shop's orders and refunds). Each "
                f"needs a short snake_case name and a one-sentence description."))],
                DOMAIN_LIST_SCHEMA, "domains")
        return [(identifier(d["name"]), d["description"]) for d in reply["domains"][:n]]

    async def _domain(self, name: str, description: str, category: str) -> None:
        rec = DomainRecord(name=name, category=category, attempts=0)
        self.report.generated += 1
        conversation = [Message(role="user", content=domain_prompt(name, description, category, self.params))]
        started = time.perf_counter()
        result: ValidationResult | None = None
        for attempt in range(self.params.repair_attempts + 1):
            try:
                async with self._sem:
                    reply = await self.client.chat(conversation)
            except LLMError as exc:
                rec.status, rec.reasons, rec.errors = "rejected", ["llm_error"], [str(exc)[:300]]
                break
            text = extract_yaml(reply.message.content or "")
            rec.attempts = attempt + 1
            async with self._accept:
                result = await validate_domain_async(
                    text, text=True, lengths=self.params.lengths, seeds=self.params.seeds,
                    existing_names=self.taken, existing=self.existing, near_dup_threshold=self.params.near_dup_threshold)
                if result.ok:
                    self._accept_domain(rec, result, text)
                    break
            conversation += [Message(role="assistant", content=reply.message.content or ""),
                             Message(role="user", content=repair_prompt(name, result))]
        if rec.status == "pending":
            rec.status = "rejected"
            rec.reasons = result.reasons if result else ["llm_error"]
            rec.errors = [i.detail for i in result.issues[:5]] if result else []
        if rec.status == "rejected":
            self.report.rejected += 1
        rec.seconds = round(time.perf_counter() - started, 3)
        self.report.domains.append(rec)

    def _accept_domain(self, rec: DomainRecord, result: ValidationResult, text: str) -> None:
        path = self.out / f"{result.domain}.yaml"
        path.write_text(text)
        self.taken.add(result.domain)
        from toolzoo.tools.loader import load_domain_text

        self.existing += existing_tools([load_domain_text(text)])
        rec.name, rec.status, rec.path = result.domain, "accepted", str(path)
        rec.repaired = rec.attempts > 1
        rec.tasks, rec.oracle_successes = result.tasks, result.oracle_successes
        self.report.accepted += 1
        self.report.repaired += int(rec.repaired)


async def synthesize_llm(client: LLMClient, params: SynthParams, out_dir: str | Path, **kw: Any) -> SynthReport:
    return await LLMSynthesizer(client, params, out_dir, **kw).run()
