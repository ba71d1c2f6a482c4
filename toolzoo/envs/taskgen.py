"""TaskGenerator: chain L goal templates into one task with labels correct by construction.

For each position the generator tries templates in a seeded order (``chain`` puts templates
that bind to ``prev`` first), binds their variables against the *current* state, replays the
reference solution on that state, and keeps the first template whose bindings resolve and
whose solution runs. A template whose bindings resolve is expected to work: a solution step
refused by a tool's ``require`` means "not applicable here" (the next template is tried), but
any other failure (a CEL runtime error, a write that breaks a schema, bad arguments, an answer
that does not evaluate) is a bug in the template or its tools and raises :class:`TemplateError`
naming the template's file:line and the failing step. The replay yields the expected answers, the
per-subtask checkpoint hashes and the expected final state, so every label is what the
reference trace really produces. Same (domain, seed, length, options) -> same task.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel

from toolzoo.config import LoadError, parse_yaml, read_text
from toolzoo.core import Step, SubtaskInstance, Task
from toolzoo.tools.cel import CelError, Expr
from toolzoo.tools.loader import CompiledSubtask, Domain
from toolzoo.tools.runtime import CallFailure, DomainRuntime
from toolzoo.tools.state import PICK_RNG, State, seed_state
from toolzoo.rubrics.answers import asks_for_values, with_answer_instructions

_CHATTER = [
    "By the way, the weather has been lovely this week.",
    "I'm asking from my phone, sorry for typos.",
    "Unrelated, but my cat just knocked over a plant.",
    "I have a meeting in ten minutes, so thanks for being quick.",
    "My colleague said your service was great last time.",
]


class TaskGenerationError(Exception):
    """No template could be placed at some position (the domain cannot make a task this long)."""


class TemplateError(Exception):
    """A template's bindings held but its reference solution (or ask, or answer) failed: a bug
    in the domain, never skipped silently. Not a :class:`TaskGenerationError` on purpose, so
    callers that skip ungeneratable (domain, seed, length) combinations do not hide it."""

    def __init__(self, domain: Domain, template: CompiledSubtask, what: str, seed: int | None = None):
        self.domain_name, self.template_id, self.what, self.seed = domain.name, template.spec.id, what, seed
        self.location = template_location(domain, template)
        super().__init__(f"{self.location} (template {template.spec.id!r}): {what}"
                         + (f" (seed {seed})" if seed is not None else ""))


def template_location(domain: Domain, template: CompiledSubtask) -> str:
    """``file:line subtasks[i]`` of a template (the file is re-read only on this error path)."""
    index = next((i for i, s in enumerate(domain.spec.subtasks) if s is template.spec), None)
    where = f"subtasks[{index}]" if index is not None else "subtasks"
    file = domain.path or f"<{domain.name}>"
    line = None
    if domain.path and index is not None:
        try:
            _, source = parse_yaml(read_text(domain.path), domain.path)
            line = source.line_of(("subtasks", index))
        except (OSError, LoadError):
            line = None
    return f"{file}:{line} {where}" if line else f"{file} {where}"


class GeneratorOptions(BaseModel):
    chain: bool = False  # prefer templates that use `prev`, for state-tracking chains
    distractors: int = 0  # lines of irrelevant chatter mixed into the asks (context-rot studies)
    templates: list[str] | None = None  # restrict to these template ids


class TaskGenerator:
    def __init__(self, domain: Domain, options: GeneratorOptions | None = None):
        self.domain = domain
        self.options = options or GeneratorOptions()
        pool = domain.subtasks
        if self.options.templates is not None:
            pool = [s for s in pool if s.spec.id in self.options.templates]
        if not pool:
            raise TaskGenerationError(f"domain {domain.name!r} has no goal templates to draw from")
        self.pool = pool

    def generate(self, seed: int, length: int) -> Task:
        if length < 1:
            raise ValueError("length must be >= 1")
        rng = random.Random(f"task:{self.domain.name}:{seed}:{length}:{self.options.chain}")
        state = seed_state(self.domain.spec, seed)
        initial_hash = state.hash()
        runtime = DomainRuntime(self.domain, state)
        subtasks: list[SubtaskInstance] = []
        prev: dict[str, Any] | None = None
        for position in range(length):
            try:
                placed = self._place(runtime, rng, prev)
            except TemplateError as exc:
                exc.seed = seed
                exc.args = (f"{exc} (seed {seed}, length {length}, position {position})",)
                raise
            if placed is None:
                raise TaskGenerationError(
                    f"{self.domain.name}: no goal template fits at position {position} (seed {seed}, length {length})")
            subtasks.append(placed)
            prev = placed.bind
        final = state.snapshot()
        touched: dict[str, set[str]] = {}
        for sub in subtasks:
            for coll, keys in sub.touched.items():
                touched.setdefault(coll, set()).update(keys)
        expected = {c: {k: final[c].get(k) for k in sorted(keys)} for c, keys in touched.items()}
        task = Task(
            id=task_id(self.domain.name, seed, length, self.options.chain),
            domain=self.domain.name, seed=seed, length=length, subtasks=subtasks,
            initial_hash=initial_hash, expected_final_hash=state.hash(),
            touched={c: sorted(keys) for c, keys in touched.items()},
            expected_final=expected,
            system_prompt=with_answer_instructions(self.domain.spec.system_prompt, self.domain.name,
                                                   asks=asks_for_values(self.domain)),
        )
        if self.options.distractors:
            task.distractors = [rng.choice(_CHATTER) for _ in range(self.options.distractors)]
        return task

    def _order(self, rng: random.Random, prev: dict[str, Any] | None) -> list[CompiledSubtask]:
        order = list(self.pool)
        rng.shuffle(order)
        if self.options.chain and prev is not None:
            order.sort(key=lambda s: not s.spec.uses_prev)  # stable: chained first, shuffled within
        return order

    def _place(self, runtime: DomainRuntime, rng: random.Random, prev: dict[str, Any] | None) -> SubtaskInstance | None:
        for template in self._order(rng, prev):
            if template.spec.uses_prev and prev is None:
                continue
            instance = self.try_template(template, runtime, rng, prev)
            if instance is not None:
                return instance
        return None

    def try_template(self, template: CompiledSubtask, runtime: DomainRuntime, rng: random.Random,
             prev: dict[str, Any] | None) -> SubtaskInstance | None:
        """Place ``template`` on the current state: the instance, or None when it does not apply
        here (bindings unsatisfiable, or a solution step refused by a ``require``). Raises
        :class:`TemplateError` when its bindings hold and anything else fails."""
        state = runtime.state
        before = state.snapshot()
        token = PICK_RNG.set(rng)
        try:
            try:
                bind = bind_variables(template.bind, state, prev)
            except CelError:
                return None
            if bind is None:
                return None
            ctx = state.cel_context(prev=prev or {}, **bind)
            try:
                ask = template.ask.render(ctx)
            except CelError as exc:
                raise TemplateError(self.domain, template, f"ask does not render with bindings {bind}: {exc}") from None
            steps = []
            for j, (tool, args) in enumerate(template.solution):
                try:
                    steps.append(Step(tool=tool, args=_eval_args(args, ctx)))
                except CelError as exc:
                    raise TemplateError(self.domain, template,
                                        f"solution[{j}] ({tool}): arguments do not evaluate with bindings {bind}: "
                                        f"{exc}") from None
        finally:
            PICK_RNG.reset(token)
        for j, step in enumerate(steps):
            result = runtime.call_sync(step.tool, step.args)
            if result.is_error:
                state.restore(before)
                if getattr(runtime, "last_failure", CallFailure.ERROR) is CallFailure.REQUIREMENT:
                    return None  # the tool's own precondition: this template does not apply here
                raise TemplateError(self.domain, template,
                                    f"solution[{j}] {step.tool}({_args_text(step.args)}) failed with bindings "
                                    f"{bind}: {result.content}")
        answer = None
        if template.answer is not None:
            try:
                answer = template.answer.eval(state.cel_context(prev=prev or {}, **bind))
            except CelError as exc:
                state.restore(before)
                raise TemplateError(self.domain, template,
                                    f"answer does not evaluate after the solution (bindings {bind}): {exc}") from None
        touched = state.changed_since(before)
        if answer is None and not touched:  # nothing a judge could check: not a usable goal here
            state.restore(before)
            return None
        expected = {c: {k: state.data[c].get(k) for k in keys} for c, keys in touched.items()}
        return SubtaskInstance(template=template.spec.id, bind=bind, ask=ask, solution=steps, answer=answer,
                               checkpoint_hash=state.hash(), touched=touched, expected=expected)


def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def task_id(domain: str, seed: int, length: int, chain: bool = False) -> str:
    return f"{domain}-s{seed}-L{length}" + ("-chain" if chain else "")


def bind_variables(exprs: dict[str, Expr], state: State, prev: dict[str, Any] | None) -> dict[str, Any] | None:
    """Evaluate a template's bindings in order; None when they cannot be satisfied (a missing
    ``prev`` field, an empty pick, an error)."""
    bind: dict[str, Any] = {}
    for name, expr in exprs.items():
        value = expr.eval(state.cel_context(prev=prev or {}, **bind))
        if value is None:
            return None
        bind[name] = value
    return bind


def _eval_args(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {k: (v.eval(ctx) if isinstance(v, Expr) else v) for k, v in args.items()}
