"""The LLM judge against a real local HTTP server (the OpenAI stub): good verdicts, malformed
JSON, missing items, server errors, a refused response_format; caching; attribution."""

from __future__ import annotations

import asyncio
import json

import pytest

from toolzoo.rubrics.apply import build_judges

from .conftest import llm_config

RUBRIC = """\
rubric: service
applies_to: {domain: retail_orders}
aggregation: explicit
items:
  - id: no_failed_calls
    criterion: Every tool call succeeded.
    weight: essential
    check: "calls.all(c, c.error == null)"
  - id: confirmed
    criterion: The agent confirmed what it did.
    weight: important
  - id: polite
    criterion: The agent was polite.
    weight: optional
"""


def verdicts(confirmed="pass", polite="fail", evidence="Please", drop=None) -> str:
    items = {"confirmed": {"verdict": confirmed, "evidence": evidence, "reason": "it said so"},
             "polite": {"verdict": polite, "evidence": "", "reason": "curt"}}
    if drop:
        items.pop(drop)
    return json.dumps({"items": items})


@pytest.fixture
def rubric_file(tmp_path):
    p = tmp_path / "service.yaml"
    p.write_text(RUBRIC)
    return p


def _apply(stub, rubric_file, run_dir, trajs, **kw):
    js = build_judges(["verifiable", {"rubric": str(rubric_file), "judge": llm_config(stub).model_dump(mode="json")
                                      | {"api_key": "k"}}], run_dir, None, domains=["retail_orders"], **kw)

    async def go():
        try:
            for t in trajs:
                await js.apply(t.task, t)
        finally:
            await js.aclose()
    asyncio.run(go())
    return js


def first_success(noisy_run, n=1):
    out = [t.model_copy(deep=True) for t in noisy_run[2] if t.outcome.success][:n]
    assert len(out) == n
    return out


def test_good_verdicts_with_evidence_and_cache(openai_stub, noisy_run, rubric_file, tmp_path):
    openai_stub.load({"default": {"content": verdicts()}})
    [traj] = first_success(noisy_run)
    js = _apply(openai_stub, rubric_file, tmp_path, [traj], combine="weighted_sum")
    s = traj.scores["service"]
    by_id = {i.id: i for i in s.items}
    assert by_id["confirmed"].passed and by_id["confirmed"].evidence == "Please"
    assert by_id["polite"].passed is False and by_id["polite"].reason.startswith("llm:")
    assert by_id["no_failed_calls"].reason.startswith("check:")
    assert s.value == pytest.approx((1.0 + 0.7) / 2.0)
    assert traj.outcome.failure is None and traj.outcome.reward == pytest.approx((1.0 + s.value) / 2)
    bodies = openai_stub.bodies()
    assert len(bodies) == 1 and js.judges[0].llm.calls == 1
    rf = bodies[0]["response_format"]
    assert rf["type"] == "json_schema" and set(rf["json_schema"]["schema"]["properties"]["items"]["required"]) == \
        {"confirmed", "polite"}
    assert traj.task.subtasks[0].ask in bodies[0]["messages"][1]["content"]  # the transcript went along
    # on-disk cache: a fresh JudgeSet on the same run folder asks nothing
    openai_stub.clear()
    again = traj.model_copy(deep=True, update={"scores": {"verifiable": traj.scores["verifiable"]}})
    _apply(openai_stub, rubric_file, tmp_path, [again])
    assert openai_stub.bodies() == [] and again.scores["service"] == s
    # a different run folder has its own cache
    _apply(openai_stub, rubric_file, tmp_path / "other", [traj.model_copy(deep=True)])
    assert len(openai_stub.bodies()) == 1


def test_evidence_not_in_transcript_is_flagged(openai_stub, noisy_run, rubric_file, tmp_path):
    openai_stub.load({"default": {"content": verdicts(evidence="I have deleted the database")}})
    [traj] = first_success(noisy_run)
    _apply(openai_stub, rubric_file, tmp_path, [traj])
    item = next(i for i in traj.scores["service"].items if i.id == "confirmed")
    assert "not found verbatim" in item.reason


def test_malformed_json_is_a_judge_failure(openai_stub, noisy_run, rubric_file, tmp_path):
    openai_stub.load({"default": {"content": "Sure! verdicts: {confirmed: pass, polite: ..."}})
    [traj] = first_success(noisy_run)
    _apply(openai_stub, rubric_file, tmp_path, [traj])
    o = traj.outcome
    assert o.failure == "judge" and o.success is True  # the verifiable verdict is kept
    assert "service" in o.reason and "LLMStructuredError" in o.reason
    assert "service" not in traj.scores
    assert traj.meta["verifiable_failure"] is None
    assert len(openai_stub.bodies()) == 2  # one ask + structured_retries=1 re-ask, bounded


def test_missing_item_is_reasked_then_accepted(openai_stub, noisy_run, rubric_file, tmp_path):
    openai_stub.load({"steps": [{"content": verdicts(drop="polite")}, {"content": verdicts(polite="pass")}]})
    [traj] = first_success(noisy_run)
    _apply(openai_stub, rubric_file, tmp_path, [traj])
    assert traj.outcome.failure is None and traj.scores["service"].value == 1.0
    bodies = openai_stub.bodies()
    assert len(bodies) == 2 and "polite" in bodies[1]["messages"][-1]["content"]


def test_missing_item_after_retries_is_a_judge_failure(openai_stub, noisy_run, rubric_file, tmp_path):
    openai_stub.load({"default": {"content": verdicts(drop="polite")}})
    trajs = [t.model_copy(deep=True) for t in noisy_run[2] if not t.outcome.success][:1]
    _apply(openai_stub, rubric_file, tmp_path, trajs)
    o = trajs[0].outcome
    assert o.failure == "judge" and o.success is False and "polite" in o.reason
    assert trajs[0].meta["verifiable_failure"] == "agent"  # the agent's own failure is not lost


def test_server_errors_are_a_judge_failure_never_agent(openai_stub, noisy_run, rubric_file, tmp_path):
    openai_stub.load({"default": {"status": 500}})
    [traj] = first_success(noisy_run)
    _apply(openai_stub, rubric_file, tmp_path, [traj])
    assert traj.outcome.failure == "judge" and "LLMUnavailable" in traj.outcome.reason
    assert len(openai_stub.bodies()) == 2  # max_retries=1: bounded


def test_refused_response_format_falls_back_to_prompted_json(openai_stub, noisy_run, rubric_file, tmp_path):
    openai_stub.load({"steps": [{"status": 400, "body": {"error": {"message": "response_format not supported"}}}],
                      "default": {"content": "Here you go:\n```json\n" + verdicts() + "\n```"}})
    [traj] = first_success(noisy_run)
    _apply(openai_stub, rubric_file, tmp_path, [traj])
    assert traj.outcome.failure is None and "service" in traj.scores
    bodies = openai_stub.bodies()
    assert "response_format" in bodies[0] and "response_format" not in bodies[1]
    assert "JSON Schema" in bodies[1]["messages"][-1]["content"]


def test_implicit_aggregation_is_one_call(openai_stub, noisy_run, tmp_path):
    p = tmp_path / "implicit.yaml"
    p.write_text(RUBRIC.replace("aggregation: explicit", "aggregation: implicit"))
    openai_stub.load({"default": {"content": json.dumps({"score": 8, "evidence": "Please", "reason": "good"})}})
    [traj] = first_success(noisy_run)
    _apply(openai_stub, p, tmp_path, [traj])
    assert traj.scores["service"].value == pytest.approx(7 / 9)
    assert len(openai_stub.bodies()) == 1
    assert [i.passed for i in traj.scores["service"].items] == [True, None, None]
