"""Hand-written task suites in YAML. Each task names a domain and a seed and lists its
subtasks either by template (``template`` + fixed ``bind`` values) or explicitly (``ask`` +
``solution`` + optional ``answer`` CEL). The reference solution is replayed exactly as for
generated tasks, so labels stay correct by construction.

```yaml
tasks:
  - domain: retail_orders
    seed: 3
    subtasks:
      - {template: status_of, bind: {o: o0004}}
      - ask: "Cancel order o0002."
        solution: [{tool: cancel_order, args: {order_id: o0002}}]
      - ask: "What is the status of o0002 now?"
        solution: [{tool: get_order, args: {order_id: o0002}}]
        answer: "state.orders['o0002'].status"
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from toolzoo.config import LoadError, Problems, load_yaml_model
from toolzoo.core import Step, SubtaskInstance, Task
from toolzoo.tools.cel import CelError, compile_expr, compile_template
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.state import seed_state
from toolzoo.tools.zoo import get_domain
from toolzoo.rubrics.answers import asks_for_values, with_answer_instructions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuiteStep(_Strict):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class SuiteSubtask(_Strict):
    template: str | None = None
    bind: dict[str, Any] = Field(default_factory=dict)
    ask: str | None = None
    solution: list[SuiteStep] = Field(default_factory=list)
    answer: str | None = None


class SuiteTask(_Strict):
    id: str | None = None
    domain: str
    seed: int = 0
    subtasks: list[SuiteSubtask] = Field(min_length=1)


class TaskSuite(_Strict):
    tasks: list[SuiteTask] = Field(min_length=1)


def load_task_suite(path: str | Path) -> list[Task]:
    suite, source = load_yaml_model(TaskSuite, path)
    problems = Problems(source)
    tasks = []
    for i, spec in enumerate(suite.tasks):
        try:
            tasks.append(_build(spec, i, problems))
        except (KeyError, FileNotFoundError) as exc:
            problems.add(("tasks", i, "domain"), str(exc))
    problems.raise_if_any()
    return tasks


def _build(spec: SuiteTask, index: int, problems: Problems) -> Task:
    domain = get_domain(spec.domain)
    templates = {t.spec.id: t for t in domain.subtasks}
    state = seed_state(domain.spec, spec.seed)
    runtime = DomainRuntime(domain, state)
    initial_hash = state.hash()
    subtasks: list[SubtaskInstance] = []
    for j, sub in enumerate(spec.subtasks):
        path = ("tasks", index, "subtasks", j)
        before = state.snapshot()
        bind = dict(sub.bind)
        try:
            if sub.template is not None:
                tpl = templates.get(sub.template)
                if tpl is None:
                    problems.add(path + ("template",), f"unknown template {sub.template!r} in {domain.name}")
                    continue
                env = state.cel_context(**bind)
                ask = sub.ask or tpl.ask.render(env)
                steps = [Step(tool=tool, args={k: (v.eval(env) if hasattr(v, "eval") else v) for k, v in args.items()})
                         for tool, args in tpl.solution]
                answer_expr = tpl.answer
            else:
                if sub.ask is None:
                    problems.add(path, "a subtask needs `template` or `ask` + `solution`")
                    continue
                ask = compile_template(sub.ask).render(state.cel_context(**bind))
                steps = [Step(tool=s.tool, args=s.args) for s in sub.solution]
                answer_expr = compile_expr(sub.answer) if sub.answer is not None else None
        except CelError as exc:
            problems.add(path, str(exc))
            continue
        for k, step in enumerate(steps):
            result = runtime.call_sync(step.tool, step.args)
            if result.is_error:
                problems.add(path + ("solution", k), f"reference call fails: {result.content}")
        answer = None
        if answer_expr is not None:
            try:
                answer = answer_expr.eval(state.cel_context(**bind))
            except CelError as exc:
                problems.add(path + ("answer",), str(exc))
        touched = state.changed_since(before)
        expected = {c: {k: state.data[c].get(k) for k in keys} for c, keys in touched.items()}
        subtasks.append(SubtaskInstance(template=sub.template or f"custom_{j}", bind=bind, ask=ask, solution=steps,
                                        answer=answer, checkpoint_hash=state.hash(), touched=touched, expected=expected))
    touched_all: dict[str, set[str]] = {}
    for s in subtasks:
        for c, keys in s.touched.items():
            touched_all.setdefault(c, set()).update(keys)
    final = state.data
    return Task(id=spec.id or f"{domain.name}-suite{index}", domain=domain.name, seed=spec.seed, length=len(subtasks),
                subtasks=subtasks, initial_hash=initial_hash, expected_final_hash=state.hash(),
                touched={c: sorted(k) for c, k in touched_all.items()},
                expected_final={c: {k: final[c].get(k) for k in sorted(keys)} for c, keys in touched_all.items()},
                system_prompt=with_answer_instructions(domain.spec.system_prompt, domain.name,
                                              asks=asks_for_values(domain)))


__all__ = ["load_task_suite", "TaskSuite", "LoadError"]
