"""A Judge over one rubric: check items run as CEL, the rest go to an LLM judge, then the
rubric's aggregation. Which rubric applies to a task comes from a resolver: a fixed file, the
domain's default from the library, or one generated per task — optionally composed with the
domain default, so generic hygiene items (no failed calls, no collateral writes) always count.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable

from toolzoo.core import ItemScore, Score, Task, Trajectory
from toolzoo.rubrics.aggregate import aggregate
from toolzoo.rubrics.base import JudgeError
from toolzoo.rubrics.checks import check_context, run_checks
from toolzoo.rubrics.llm_judge import LLMJudge
from toolzoo.rubrics.loader import Rubric, compile_rubric, load_rubric
from toolzoo.rubrics.spec import RubricSpec

LIBRARY_DIR = Path(__file__).parent / "library"

Resolver = Callable[[Task], Awaitable["Rubric | None"]]


@lru_cache(maxsize=64)
def default_rubric(domain: str) -> Rubric | None:
    """The library's default rubric for a domain name, or None."""
    path = LIBRARY_DIR / f"{domain}.yaml"
    return load_rubric(path) if path.exists() else None


def applies(rubric: Rubric, task: Task) -> bool:
    a = rubric.spec.applies_to
    return (a.domain is None or a.domain == task.domain) and (a.task is None or a.task == task.id)


def compose(base: Rubric, specific: Rubric) -> Rubric:
    """``specific``'s items and aggregation plus ``base``'s items, ids prefixed ``<base>.``."""
    items = [i.model_copy(update={"id": f"{base.name}.{i.id}"}) for i in base.items] + list(specific.items)
    spec = RubricSpec(rubric=specific.name, applies_to=specific.spec.applies_to,
                      aggregation=specific.spec.aggregation, items=items,
                      version=specific.spec.version, description=specific.spec.description)
    out = compile_rubric(spec)
    out.file = specific.file
    out.version = hashlib.sha256(f"{base.version}+{specific.version}".encode()).hexdigest()[:16]
    return out


def without_llm_items(rubric: Rubric) -> Rubric:
    items = [i for i in rubric.items if i.check is not None]
    if not items:
        raise ValueError(f"rubric {rubric.name!r} has no check items (checks_only leaves nothing)")
    spec = rubric.spec.model_copy(update={"items": items})
    out = compile_rubric(spec)
    out.file = rubric.file
    return out


def fixed(rubric: Rubric) -> Resolver:
    async def resolve(task: Task) -> Rubric | None:
        return rubric if applies(rubric, task) else None
    return resolve


class RubricJudge:
    """The Judge contract for rubrics. ``initial_state(task)`` gives the task's initial state
    (``initial`` in checks); ``llm`` decides items without checks (None: such items are an
    error, raised as JudgeError)."""

    def __init__(self, name: str, resolve: Resolver, initial_state: Callable[[Task], dict[str, Any]],
                 llm: LLMJudge | None = None):
        self.name = name
        self.resolve = resolve
        self.initial_state = initial_state
        self.llm = llm

    async def score(self, task: Task, trajectory: Trajectory, final_state: dict[str, Any] | None) -> Score | None:
        """The rubric's score, or None when no rubric applies to this task."""
        rubric = await self.resolve(task)
        if rubric is None:
            return None
        try:
            initial = self.initial_state(task)
        except Exception as exc:  # noqa: BLE001 - an unresolvable domain is the judge's failure
            raise JudgeError(f"rubric {rubric.name!r}: initial state of {task.domain!r} unavailable: {exc}") from exc
        weights = rubric.weights()
        ctx = check_context(task, trajectory, initial, final_state)
        checked = {i.id: i for i in run_checks(rubric.checks, weights, ctx)}
        facts = {k: bool(v.passed) for k, v in checked.items()}
        llm_items = rubric.llm_items()
        need_llm = bool(llm_items) or rubric.spec.aggregation == "implicit"
        if need_llm and self.llm is None:
            raise JudgeError(f"rubric {rubric.name!r} needs an LLM judge ({len(llm_items)} item(s) without a check"
                             f"{', implicit aggregation' if rubric.spec.aggregation == 'implicit' else ''}) "
                             "and none is configured")
        items: list[ItemScore] = []
        implicit = rubric.spec.aggregation == "implicit"
        # implicit: one call scores the whole rubric; its LLM items get no verdicts of their own
        verdicts = await self.llm.verdicts(rubric, task, trajectory, facts) if llm_items and not implicit else {}
        for it in rubric.items:
            if it.id in checked:
                items.append(checked[it.id])
            elif implicit:
                items.append(ItemScore(id=it.id, passed=None, weight=weights[it.id], reason="llm: judged implicitly"))
            else:
                v = verdicts[it.id]
                items.append(ItemScore(id=it.id, passed=v.passed, value=float(v.passed), weight=weights[it.id],
                                       reason=f"llm: {v.reason}", evidence=v.evidence))
        reasons = [f"rubric {rubric.name} version {rubric.version} ({rubric.spec.aggregation})"]
        essential = {i.id for i in rubric.items if i.essential}
        if implicit:
            assert self.llm is not None
            overall, evidence, why = await self.llm.overall(rubric, task, trajectory, facts)
            value = aggregate("implicit", items, essential, overall)
            reasons.append(f"llm overall {overall}/10: {why} (evidence: {evidence!r})")
        else:
            value = aggregate(rubric.spec.aggregation, items, essential)
        return Score(value=value, items=items, reasons=reasons)
