"""``toolzoo train`` rewards rollouts with the run's scorer: a rubric among the judges reaches
GRPO. Only the rubric separates the two behaviours here (calling a tool vs answering without
one: the tiny model fails the verifiable check either way), and GRPO moves toward the one the
rubric prefers, while the same run with the verifiable judge alone does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolzoo.trainer.config import TrainConfig
from toolzoo.trainer.loop import train

DOMAIN = str(Path(__file__).parent / "data" / "tiny_shop.yaml")
TINY = {"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "num_heads": 2, "num_kv_heads": 1}
RUBRIC = """
rubric: no_tools
aggregation: explicit
items:
  - id: answered_without_tools
    criterion: The agent answered without calling a tool.
    weight: essential
    check: "size(calls) == 0"
"""


def _config(out: Path, judges: list, **kw) -> TrainConfig:
    base = dict(train="t", algorithm="grpo", model={"tiny": TINY}, domains=[DOMAIN], lengths=[1],
                steps=STEPS, batch=4, group_size=4, learning_rate=3e-3, max_turns=1, seed=3,
                judges=judges, judge_combine="weighted_sum",
                sft={"episodes": 8, "steps": 20, "batch_size": 8},
                eval={"lengths": [1], "tasks_per_length": 24}, rollout={"max_new_tokens": 12},
                output=str(out), threads=2)
    base.update(kw)
    return TrainConfig.model_validate(base)


STEPS = 8


def _tool_rate(out: Path) -> float:
    rows = [json.loads(line) for line in (out / "eval" / "trajectories.jsonl").read_text().splitlines()]
    return sum(bool(r["calls"]) or any(m.get("tool_calls") for m in r["messages"]) for r in rows) / len(rows)


@pytest.mark.slow
def test_grpo_moves_toward_the_rubric_preferred_behaviour(tmp_path):
    rubric = tmp_path / "no_tools.yaml"
    rubric.write_text(RUBRIC)
    with_rubric = tmp_path / "rubric"
    summary = train(_config(with_rubric, ["verifiable", {"rubric": str(rubric), "checks_only": True}]), progress=False)
    control = tmp_path / "control"
    train(_config(control, ["verifiable"]), progress=False)
    rows = [json.loads(line) for line in (with_rubric / "metrics.jsonl").read_text().splitlines()]
    grpo = [r for r in rows if r["phase"] == "grpo"]
    assert len(grpo) == STEPS and summary["steps"] == len(rows)
    # the learner saw the combined reward: rubric credit although no episode passed the verifiable check
    assert any(r.get("reward_mean", 0) > 0 for r in grpo)
    assert _tool_rate(with_rubric) + 0.25 <= _tool_rate(control), (_tool_rate(with_rubric), _tool_rate(control))
