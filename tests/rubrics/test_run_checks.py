"""A run whose rubric has only check items needs no LLM: the oracle scores 1.0, the noisy
oracle lower, exactly on the episodes the verifiable judge fails.

The oracle run goes through the Runner, which applies the rubric after each episode; the
noisy-oracle trajectories are re-judged here with ``build_judges(...).apply`` (what the runner
runs after each episode) so one run serves several rubrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from toolzoo.rubrics.apply import build_judges, summary_blocks

from .conftest import run_small

CHECKS_ONLY = """\
rubric: retail_checks
applies_to: {domain: retail_orders}
items:
  - id: goals_done
    criterion: Every record the requests change ends as the reference leaves it.
    weight: essential
    check: >-
      task.expected_final.all(c, task.expected_final[c].all(k,
        k in final[c] && final[c][k] == task.expected_final[c][k]))
  - id: answered
    criterion: The agent stated every answer.
    weight: essential
    check: "task.answers.all(a, a == null || said(a))"
  - id: no_failed_calls
    criterion: Every tool call succeeded.
    weight: important
    check: "calls.all(c, c.error == null)"
"""


def judged(cfg, trajs, run_dir: Path, rubric_path: Path):
    js = build_judges(["verifiable", {"rubric": str(rubric_path)}], run_dir, None, domains=cfg.domains)

    async def go():
        for t in trajs:
            await js.apply(t.task, t)
        await js.aclose()
    asyncio.run(go())
    assert js.judges[0].llm is None  # no endpoint was needed
    return trajs


@pytest.fixture(scope="module")
def rubric_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("rubric") / "retail_checks.yaml"
    p.write_text(CHECKS_ONLY)
    return p


def test_oracle_scores_one(tmp_path, rubric_file):
    cfg, summary, trajs = run_small(tmp_path / "oracle", {"kind": "oracle"},
                                    judges=["verifiable", {"rubric": str(rubric_file)}], tasks=5)
    assert len(trajs) == 15  # judged by the runner itself
    assert summary["rubrics"]["retail_checks"]["mean"] == 1.0
    assert all(t.scores["retail_checks"].value == 1.0 and t.outcome.reward == 1.0 for t in trajs)
    blocks = summary_blocks(trajs)
    assert blocks["rubrics"]["retail_checks"]["mean"] == 1.0
    assert set(blocks["rubrics"]["retail_checks"]["by_length"]) == {"1", "2", "4"}
    json.dumps(blocks)  # summary.json material


def test_noisy_oracle_scores_lower_in_proportion(noisy_run, tmp_path, rubric_file):
    cfg, summary, trajs = noisy_run
    trajs = judged(cfg, [t.model_copy(deep=True) for t in trajs], tmp_path, rubric_file)
    scores = [t.scores["retail_checks"].value for t in trajs]
    success = [t.outcome.success for t in trajs]
    assert 0 < sum(success) < len(trajs)
    # a perfect rubric score exactly where the verifiable judge says success ...
    assert [s == 1.0 for s in scores] == success
    # ... so the share of perfect scores is the success rate, and the mean sits between it and 1
    mean = sum(scores) / len(scores)
    rate = sum(success) / len(success)
    assert rate <= mean < 1.0
    # the reward is the product of verifiable and rubric scores: 0 on failures
    assert all(t.outcome.reward == (1.0 if t.outcome.success else 0.0) for t in trajs)
    by_len = summary_blocks(trajs)["rubrics"]["retail_checks"]["by_length"]
    assert by_len["1"] > by_len["4"]  # more subtasks, more chances to fail


def test_default_rubric_checks_only_matches_verifiable(noisy_run, tmp_path):
    cfg, _, trajs = noisy_run
    trajs = [t.model_copy(deep=True) for t in trajs]
    js = build_judges([{"rubric": "default", "checks_only": True}], tmp_path, None, combine="weighted_sum",
                      domains=cfg.domains)

    async def go():
        for t in trajs:
            await js.apply(t.task, t)
    asyncio.run(go())
    for t in trajs:
        s = t.scores["default"]
        assert [i.id for i in s.items] == ["goals_done", "answered_every_question", "no_failed_tool_calls",
                                           "avoids_collateral_changes"]
        assert (s.value == 1.0) == t.outcome.success
        assert t.outcome.reward == s.value  # verifiable not listed: the rubric alone


def test_llm_items_without_endpoint_fail_at_build(tmp_path):
    with pytest.raises(ValueError, match="judge"):
        build_judges([{"rubric": str(Path(__file__).parents[2] / "toolzoo/rubrics/library/retail_orders.yaml")}],
                     tmp_path, None)
    with pytest.raises(ValueError, match="two judges"):
        build_judges([{"rubric": "default", "checks_only": True}, {"rubric": "default", "checks_only": True}],
                     tmp_path, None)
