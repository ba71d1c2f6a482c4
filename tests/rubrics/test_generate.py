"""Rubric generation against the local stub server: a valid draft is stored frozen; malformed
JSON, too few items, a restated solution and server errors are handled and attributed."""

from __future__ import annotations

import asyncio
import json

import pytest

from toolzoo.core import Step, SubtaskInstance, Task
from toolzoo.llm import LLMClient
from toolzoo.rubrics.apply import build_judges
from toolzoo.rubrics.generate import GenerationError, RubricStore, generate_rubric, restates_solution
from toolzoo.rubrics.loader import load_rubric

from .conftest import llm_config

GOOD_ITEMS = [
    {"id": "no_failed_calls", "criterion": "Every tool call succeeded.", "weight": "important",
     "check": "calls.all(c, c.error == null)"},
    {"id": "used_tools", "criterion": "The agent looked things up with tools.", "weight": "essential",
     "check": "size(calls) > 0"},
    {"id": "answers_stated", "criterion": "Every answer was stated.", "weight": "essential",
     "check": "task.answers.all(a, a == null || said(a))"},
    {"id": "right_records", "criterion": "The records asked about end as requested.", "weight": "essential",
     "check": "task.expected_final.all(c, task.expected_final[c].all(k, k in final[c] && "
              "final[c][k] == task.expected_final[c][k]))"},
    {"id": "no_deletions", "criterion": "Avoids deleting orders.", "weight": "pitfall",
     "check": "size(final.orders) == size(initial.orders)"},
    {"id": "assistant_spoke", "criterion": "The agent replied to the user.", "weight": "optional",
     "check": "messages.exists(m, m.role == 'assistant' && m.content != '')"},
    {"id": "few_calls", "criterion": "Avoids needless calls.", "weight": 0.5,
     "check": "size(calls) <= 3 * task.length"},
]


def reply(items) -> dict:
    return {"content": json.dumps({"items": items})}


def task_of(noisy_run, length=2) -> Task:
    return next(t.task for t in noisy_run[2] if t.task.length == length)


def gen(stub, task, **kw):
    async def go():
        async with LLMClient(llm_config(stub)) as c:
            return await generate_rubric(c, task, **kw)
    return asyncio.run(go())


def test_good_rubric_is_validated_and_versioned(openai_stub, noisy_run):
    openai_stub.load([reply(GOOD_ITEMS)])
    task = task_of(noisy_run)
    rubric, text = gen(openai_stub, task, file="x.yaml")
    assert len(rubric.items) == 7 and len(rubric.checks) == 7
    assert rubric.spec.version == rubric.version and f"version: {rubric.version}" in text
    assert rubric.spec.applies_to.task == task.id
    body = openai_stub.bodies()[0]
    prompt = body["messages"][1]["content"]
    assert task.subtasks[0].ask in prompt and task.subtasks[0].solution[0].tool in prompt  # goals + trace
    assert body["response_format"]["json_schema"]["schema"]["properties"]["items"]["minItems"] == 7


@pytest.mark.parametrize("script, words", [
    ([{"content": "here is a rubric: items: - id: a"}] * 2, "LLMStructuredError"),
    ([reply(GOOD_ITEMS[:5])] * 2, "LLMStructuredError"),  # fewer than 7 items: schema
    ([{"status": 500}] * 2, "LLMUnavailable"),
    ([reply(GOOD_ITEMS[:6] + [{"id": "bad", "criterion": "x", "weight": "essential", "check": "final.x =="}])] * 3,
     "CEL does not compile"),
])
def test_failures_raise_generation_error(openai_stub, noisy_run, script, words):
    openai_stub.load(script)
    with pytest.raises(GenerationError) as info:
        gen(openai_stub, task_of(noisy_run))
    assert words in str(info.value)


def test_restated_solution_is_rejected_then_corrected(openai_stub, noisy_run):
    task = task_of(noisy_run)
    s0 = task.subtasks[0].solution[0]
    restating = {"id": "follows_trace", "weight": "essential",
                 "criterion": f"The agent calls {s0.tool}({json.dumps(s0.args)}) first."}
    openai_stub.load([reply(GOOD_ITEMS + [restating]), reply(GOOD_ITEMS)])
    rubric, _ = gen(openai_stub, task)
    assert "follows_trace" not in {i.id for i in rubric.items}
    second = openai_stub.bodies()[1]["messages"][-1]["content"]
    assert "restates the reference solution" in second and "items[7].criterion" in second


def test_restates_solution_rule():
    task = Task(id="t", domain="d", seed=0, length=2, subtasks=[
        SubtaskInstance(template="a", ask="Refund o0042", solution=[Step(tool="refund_order", args={"order_id": "o0042"})]),
        SubtaskInstance(template="b", ask="Tier of c003?", solution=[Step(tool="get_customer", args={"customer_id": "c003"})]),
    ])
    assert restates_solution("The agent refunded exactly order o0042.", task) is None
    assert restates_solution("The agent calls refund_order(order_id=o0042).", task)
    assert restates_solution('Uses refund_order with {"order_id": "o0042"}', task)
    assert restates_solution("First refund_order on o0042, then get_customer for c003.", task)
    assert restates_solution("get_customer for c003 then refund_order on o0042", task) is None  # not in order


def test_store_is_frozen_and_auto_judging_reuses_it(openai_stub, noisy_run, tmp_path):
    judge_reply = {"content": json.dumps({"items": {
        "retail_orders_default.reported_outcome": {"verdict": "pass", "evidence": "", "reason": "ok"},
        "retail_orders_default.avoids_invented_facts": {"verdict": "pass", "evidence": "", "reason": "ok"}}})}
    openai_stub.load({"rules": [{"match": "write grading rubrics", "field": "system", "reply": reply(GOOD_ITEMS)},
                                {"match": "You grade a conversation", "field": "system", "reply": judge_reply}]})
    trajs = [t.model_copy(deep=True) for t in noisy_run[2] if t.task.length == 2][:2]
    cfg = llm_config(openai_stub).model_dump(mode="json") | {"api_key": "k"}

    def run(ts):
        js = build_judges([{"rubric": "auto", "judge": cfg}], tmp_path, None, domains=["retail_orders"])

        async def go():
            for t in ts:
                await js.apply(t.task, t)
            await js.aclose()
        asyncio.run(go())

    run(trajs)
    files = sorted((tmp_path / "rubrics").glob("*.yaml"))
    assert {f.stem for f in files} == {t.task.id for t in trajs}
    for t in trajs:
        s = t.scores["auto"]
        assert len(s.items) == 7 + 6  # generated + composed domain default
        assert t.outcome.failure != "judge" and t.outcome.reward == s.value  # verifiable not listed
    gen_calls = [b for b in openai_stub.bodies() if "write grading rubrics" in b["messages"][0]["content"]]
    assert len(gen_calls) == len({t.task.id for t in trajs})
    frozen = {f: f.read_text() for f in files}
    # re-judging: no generation, no judging (frozen file + judge cache), identical scores
    openai_stub.clear()
    again = [t.model_copy(deep=True, update={"scores": {"verifiable": t.scores["verifiable"]}}) for t in trajs]
    run(again)
    assert openai_stub.bodies() == []
    assert [a.scores["auto"] for a in again] == [t.scores["auto"] for t in trajs]
    assert {f: f.read_text() for f in files} == frozen
    assert load_rubric(files[0]).spec.version == load_rubric(files[0]).version


def test_auto_generation_failure_is_a_judge_failure(openai_stub, noisy_run, tmp_path):
    openai_stub.load({"default": {"status": 503}})
    traj = noisy_run[2][0].model_copy(deep=True)
    js = build_judges([{"rubric": "auto", "judge": llm_config(openai_stub).model_dump(mode="json") | {"api_key": "k"}}],
                      tmp_path, None, domains=["retail_orders"])

    async def go():
        await js.apply(traj.task, traj)
        await js.aclose()
    asyncio.run(go())
    assert traj.outcome.failure == "judge" and "rubric generation" in traj.outcome.reason
    assert not (tmp_path / "rubrics").exists() or not list((tmp_path / "rubrics").glob("*.yaml"))


def test_store_without_client_and_without_file_fails(tmp_path, noisy_run):
    with pytest.raises(GenerationError, match="no generator endpoint"):
        asyncio.run(RubricStore(tmp_path, None).get(task_of(noisy_run)))
