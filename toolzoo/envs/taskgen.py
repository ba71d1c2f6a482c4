"""TaskGenerator: chain L goal templates into one task with labels correct by construction.

For each position the generator tries templates in a seeded order (``chain`` puts templates
that bind to ``prev`` first), binds their variables against the *current* state, replays the
reference solution on that state, and keeps the first template whose bindings resolve and
whose solution runs without a tool error. The replay yields the expected answers, the
per-subtask checkpoint hashes and the expected final state, so every label is what the
reference trace really produces. Same (domain, seed, length, options) -> same task.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel

from toolzoo.core import Step, SubtaskInstance, Task
from toolzoo.tools.cel import CelError, Expr
from toolzoo.tools.loader import CompiledSubtask, Domain
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.state import PICK_RNG, State, seed_state

_CHATTER = [
    "By the way, the weather has been lovely this week.",
    "I'm asking from my phone, sorry for typos.",
    "Unrelated, but my cat just knocked over a plant.",
    "I have a meeting in ten minutes, so thanks for being quick.",
    "My colleague said your service was great last time.",
]


class TaskGenerationError(Exception):
    """No template could be placed at some position (the domain cannot make a task this long)."""


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
            placed = self._place(runtime, rng, prev)
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
            expected_final=expected, system_prompt=self.domain.spec.system_prompt,
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
            instance = self._try(template, runtime, rng, prev)
            if instance is not None:
                return instance
        return None

    def _try(self, template: CompiledSubtask, runtime: DomainRuntime, rng: random.Random,
             prev: dict[str, Any] | None) -> SubtaskInstance | None:
        state = runtime.state
        before = state.snapshot()
        token = PICK_RNG.set(rng)
        try:
            bind = bind_variables(template.bind, state, prev)
            if bind is None:
                return None
            ctx = state.cel_context(prev=prev or {}, **bind)
            ask = template.ask.render(ctx)
            steps = [Step(tool=tool, args=_eval_args(args, ctx)) for tool, args in template.solution]
        except CelError:
            return None
        finally:
            PICK_RNG.reset(token)
        for step in steps:
            if runtime.call_sync(step.tool, step.args).is_error:
                state.restore(before)
                return None
        answer = None
        if template.answer is not None:
            try:
                answer = template.answer.eval(state.cel_context(prev=prev or {}, **bind))
            except CelError:
                state.restore(before)
                return None
        touched = diff_keys(before, state.data)
        if answer is None and not touched:  # nothing a judge could check: not a usable goal here
            state.restore(before)
            return None
        expected = {c: {k: state.data[c].get(k) for k in keys} for c, keys in touched.items()}
        return SubtaskInstance(template=template.spec.id, bind=bind, ask=ask, solution=steps, answer=answer,
                               checkpoint_hash=state.hash(), touched=touched, expected=expected)


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


def diff_keys(before: dict[str, dict], after: dict[str, dict]) -> dict[str, list[str]]:
    """Per collection, the keys whose record differs (changed, inserted or deleted)."""
    out: dict[str, list[str]] = {}
    for coll in after:
        keys = sorted(k for k in set(before[coll]) | set(after[coll]) if before[coll].get(k) != after[coll].get(k))
        if keys:
            out[coll] = keys
    return out
