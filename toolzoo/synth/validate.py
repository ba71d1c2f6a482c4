"""Domain validation: a synthesized domain enters the zoo only if the oracle solves its tasks.

Checks, each reported with a reason code (so reports can count them):

* ``load_error`` — the YAML does not load (shape, CEL, names, schemas, seeds): every problem.
* ``no_templates`` / ``unreachable_tool`` — a tool that no goal template's solution uses can
  never be exercised by a generated task, so it is dead weight (or a sign of a broken template).
* ``task_generation`` — the generator cannot place a template at some length/seed.
* ``template_error`` — a template's bindings held but its reference solution failed for a reason
  other than a tool's ``require`` (a typo deep in an effect, a write that breaks a schema...):
  named by file:line and the failing step.
* ``never_generates`` — (``deep``) a template placed on no state of any seed tried: at the start,
  after every other template, and in generated chains.
* ``oracle_failure`` — an oracle episode (scripted user, per-turn) on a generated task fails the
  verifiable judge: the labels, answers or effects disagree with each other.
* ``duplicate_name`` — the domain name is already taken.
* ``near_duplicate_tool`` — a tool has the name of an existing tool, or the same parameter
  schema and a description more similar (difflib ratio) than the threshold.

``validate_domain`` is synchronous (for worker processes); ``validate_domain_async`` is the same
inside a running event loop (LLM synthesis).
"""

from __future__ import annotations

import asyncio
import difflib
import json
import random
import time
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, Field

import yaml

from toolzoo.config import LoadError, SourceMap, validate_model
from toolzoo.envs.episode import run_episode
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.envs.taskgen import GeneratorOptions, TaskGenerationError, TaskGenerator, TemplateError, template_location
from toolzoo.agents.scripted import OracleAgent
from toolzoo.tools.loader import Domain, compile_domain, load_domain, load_domain_text
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.session import DirectSession
from toolzoo.tools.spec import DomainSpec, ToolSpec
from toolzoo.tools.state import seed_state

_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Reason = Literal["load_error", "no_templates", "unreachable_tool", "task_generation", "template_error",
                 "never_generates", "oracle_failure", "duplicate_name", "near_duplicate_tool", "duplicate_domain"]


class ValidationIssue(BaseModel):
    reason: Reason
    detail: str


class ValidationResult(BaseModel):
    domain: str = ""
    ok: bool = False
    issues: list[ValidationIssue] = Field(default_factory=list)
    tasks: int = 0
    oracle_successes: int = 0
    seconds: float = 0.0

    @property
    def reasons(self) -> list[str]:
        return sorted({i.reason for i in self.issues})

    def error_text(self, limit: int = 30) -> str:
        """The problems as lines, for a human or for the repair prompt of an LLM."""
        lines = [f"- [{i.reason}] {i.detail}" for i in self.issues[:limit]]
        if len(self.issues) > limit:
            lines.append(f"- ... and {len(self.issues) - limit} more")
        return "\n".join(lines)


class ExistingTool(BaseModel):
    """A tool already in the zoo, for the near-duplicate check."""

    domain: str
    name: str
    description: str = ""
    schema_key: str = ""  # canonical JSON of the parameter schema

    @classmethod
    def of(cls, domain: str, tool: ToolSpec) -> ExistingTool:
        return cls(domain=domain, name=tool.name, description=tool.description,
                   schema_key=schema_key(tool.parameters))


def schema_key(parameters: dict[str, Any]) -> str:
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"))


def existing_tools(domains: Iterable[Domain | DomainSpec]) -> list[ExistingTool]:
    out = []
    for d in domains:
        spec = d.spec if isinstance(d, Domain) else d
        out.extend(ExistingTool.of(spec.domain, t) for t in spec.tools)
    return out


def near_duplicates(spec: DomainSpec, existing: Iterable[ExistingTool], threshold: float = 0.85) -> list[ValidationIssue]:
    by_name: dict[str, ExistingTool] = {}
    by_schema: dict[str, list[ExistingTool]] = {}
    for e in existing:
        if e.domain == spec.domain:
            continue
        by_name.setdefault(e.name, e)
        by_schema.setdefault(e.schema_key, []).append(e)
    issues = []
    for tool in spec.tools:
        if (same := by_name.get(tool.name)) is not None:
            issues.append(ValidationIssue(reason="near_duplicate_tool",
                                          detail=f"tool {tool.name!r} already exists in domain {same.domain!r}"))
            continue
        for other in by_schema.get(schema_key(tool.parameters), []):
            ratio = difflib.SequenceMatcher(None, tool.description.lower(), other.description.lower()).ratio()
            if ratio >= threshold:
                issues.append(ValidationIssue(
                    reason="near_duplicate_tool",
                    detail=f"tool {tool.name!r} has the parameters of {other.domain}.{other.name} and a "
                           f"description {ratio:.0%} similar to it"))
                break
    return issues


def unreachable_tools(spec: DomainSpec) -> list[str]:
    used = {step.tool for sub in spec.subtasks for step in sub.solution}
    return [t.name for t in spec.tools if t.name not in used]


async def oracle_check(domain: Domain, lengths: Iterable[int], seeds: Iterable[int],
                       result: ValidationResult, max_issues: int = 5) -> None:
    """Generate tasks and run the oracle on each; record failures in ``result``."""
    gen = TaskGenerator(domain)
    for length in lengths:
        for seed in seeds:
            try:
                task = gen.generate(seed, length)
            except TaskGenerationError as exc:
                result.issues.append(ValidationIssue(reason="task_generation", detail=str(exc)))
                continue
            except TemplateError as exc:
                if not any(i.reason == "template_error" and exc.location in i.detail for i in result.issues):
                    result.issues.append(ValidationIssue(reason="template_error", detail=str(exc)))
                continue
            except Exception as exc:  # a CEL/runtime surprise is the domain's fault, not a crash
                result.issues.append(ValidationIssue(reason="task_generation",
                                                     detail=f"length {length} seed {seed}: {type(exc).__name__}: {exc}"))
                continue
            session = DirectSession(DomainRuntime(domain, seed_state(domain.spec, task.seed)))
            traj = await run_episode(task, OracleAgent(), ScriptedUser(), session, episode_id=f"validate-{task.id}")
            result.tasks += 1
            if traj.outcome is not None and traj.outcome.success:
                result.oracle_successes += 1
            elif sum(i.reason == "oracle_failure" for i in result.issues) < max_issues:
                why = traj.outcome.reason if traj.outcome else "no outcome"
                result.issues.append(ValidationIssue(
                    reason="oracle_failure",
                    detail=f"length {length} seed {seed} templates {[s.template for s in task.subtasks]}: {why}"))


def template_check(domain: Domain, seeds: Iterable[int], never_generates: bool = True,
                   chain_lengths: Iterable[int] = (2, 4, 8)) -> list[ValidationIssue]:
    """Place every template on every seed's state: first (when it needs no ``prev``), after each
    template that can come first, and along generated chains. A template whose solution fails
    with its bindings held is a ``template_error`` (each template reported once); with
    ``never_generates``, a template placed nowhere is reported too."""
    issues: dict[str, ValidationIssue] = {}
    placed: set[str] = set()

    def attempt(fn: Any) -> Any:
        try:
            return fn()
        except TemplateError as exc:
            issues.setdefault(exc.template_id, ValidationIssue(reason="template_error", detail=str(exc)))
            return None

    for seed in seeds:
        rng = random.Random(f"validate:{domain.name}:{seed}")
        firsts = []
        for first in domain.subtasks:
            if first.spec.uses_prev:
                continue
            gen = TaskGenerator(domain, GeneratorOptions(templates=[first.spec.id]))
            runtime = DomainRuntime(domain, seed_state(domain.spec, seed))
            inst = attempt(lambda: gen.try_template(first, runtime, rng, None))
            if inst is None:
                continue
            placed.add(first.spec.id)
            firsts.append((first, runtime.state.snapshot(), inst.bind))
        for template in domain.subtasks:
            if template.spec.id in issues:
                continue
            for first, snapshot, bind in firsts:
                state = seed_state(domain.spec, seed)
                state.restore(snapshot)
                inst = attempt(lambda: TaskGenerator(domain).try_template(template, DomainRuntime(domain, state), rng, bind))
                if inst is not None:
                    placed.add(template.spec.id)
                    break
        for length in chain_lengths:
            for chain in (False, True):
                try:
                    task = TaskGenerator(domain, GeneratorOptions(chain=chain)).generate(seed, length)
                except TemplateError as exc:
                    issues.setdefault(exc.template_id, ValidationIssue(reason="template_error", detail=str(exc)))
                    continue
                except TaskGenerationError:
                    continue
                placed.update(s.template for s in task.subtasks)
    out = list(issues.values())
    if never_generates:
        for template in domain.subtasks:
            if template.spec.id not in placed and template.spec.id not in issues:
                out.append(ValidationIssue(
                    reason="never_generates",
                    detail=f"{template_location(domain, template)} (template {template.spec.id!r}): placed on no "
                           f"state of seeds {list(seeds)} (its bindings never hold, or a tool's require always "
                           f"refuses its solution)"))
    return out


def _load(source: DomainSpec | Domain | str | Path, text: bool) -> Domain:
    if isinstance(source, Domain):
        return source
    if isinstance(source, DomainSpec):
        return compile_domain(source)
    if not text:
        return load_domain(source)
    # Fast path: libyaml parses ~10x faster than the line-tracking composer; only when the
    # text has problems is it loaded again the slow way, for errors that name their lines.
    try:
        data = yaml.load(str(source), Loader=_FastLoader)
        return compile_domain(validate_model(DomainSpec, data, SourceMap("<synthesized>")))
    except (LoadError, yaml.YAMLError):
        return load_domain_text(str(source), "<synthesized>")


async def validate_domain_async(source: DomainSpec | Domain | str | Path, *, text: bool = False,
                                lengths: Iterable[int] = range(1, 9), seeds: Iterable[int] = (0, 1),
                                existing_names: Iterable[str] = (), existing: Iterable[ExistingTool] = (),
                                near_dup_threshold: float = 0.85) -> ValidationResult:
    """Validate a domain given as a spec, a loaded domain, a path, or (``text=True``) YAML text."""
    started = time.perf_counter()
    result = ValidationResult()
    try:
        domain = _load(source, text)
    except LoadError as exc:
        result.issues = [ValidationIssue(reason="load_error", detail=str(p)) for p in exc.problems]
        result.seconds = time.perf_counter() - started
        return result
    spec = domain.spec
    result.domain = spec.domain
    if spec.domain in set(existing_names):
        result.issues.append(ValidationIssue(reason="duplicate_name", detail=f"domain name {spec.domain!r} is taken"))
    result.issues += near_duplicates(spec, existing, near_dup_threshold)
    if not spec.subtasks:
        result.issues.append(ValidationIssue(reason="no_templates", detail="the domain has no goal templates (subtasks)"))
    else:
        for name in unreachable_tools(spec):
            result.issues.append(ValidationIssue(reason="unreachable_tool",
                                                 detail=f"tool {name!r} is used by no goal template's solution"))
        await oracle_check(domain, list(lengths), list(seeds), result)
    result.ok = not result.issues and result.tasks > 0 and result.oracle_successes == result.tasks
    result.seconds = time.perf_counter() - started
    return result


def validate_domain(source: DomainSpec | Domain | str | Path, **kw: Any) -> ValidationResult:
    """Synchronous :func:`validate_domain_async` (not from inside a running event loop)."""
    return asyncio.run(validate_domain_async(source, **kw))
