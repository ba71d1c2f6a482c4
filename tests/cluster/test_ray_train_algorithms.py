"""`toolzoo train --ray` for every algorithm is the local trainer with its episodes on Ray
workers: with ``rollout.seed_per_episode`` (each episode samples from a generator seeded from
the run seed, the policy version and the episode id, on whichever process runs it) a Ray run
samples the local run's very episodes, so SFT, GRPO, π-Distill, OPSD and LoRA GRPO give the
same losses step by step, the same metrics rows and the same evaluation. A rubric among the
judges reaches the reward on the workers as it does locally. Real local Ray cluster (2 CPUs,
150 MB object store), tiny model, tiny shop."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from toolzoo.trainer.config import TrainConfig

DOMAIN = str(Path(__file__).parents[1] / "trainer" / "data" / "tiny_shop.yaml")
TINY = {"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "num_heads": 2, "num_kv_heads": 1}
BRIEF = """
rubric: brief
aggregation: explicit
items:
  - id: brief_replies
    criterion: Every reply of the agent is brief.
    weight: essential
    check: "messages.all(m, m.role != 'assistant' || size(m.content) <= 24)"
"""


def _config(out: Path, **kw) -> TrainConfig:
    base = dict(train="t", algorithm="grpo", model={"tiny": TINY}, domains=[DOMAIN], lengths=[1],
                steps=2, batch=2, group_size=2, learning_rate=1e-2, max_turns=3, seed=5,
                sft={"episodes": 6, "steps": 2, "batch_size": 4},
                eval={"lengths": [1], "tasks_per_length": 3},
                rollout={"max_new_tokens": 8, "seed_per_episode": True},
                checkpoint_every=0, output=str(out), threads=1)
    base.update(kw)
    return TrainConfig.model_validate(base)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _train_both(tmp_path: Path, **kw) -> tuple[list[dict], list[dict], dict]:
    from toolzoo.cluster.ray_train import train_on_ray
    from toolzoo.trainer.loop import train

    train(_config(tmp_path / "local", **kw), progress=False)
    summary = train_on_ray(_config(tmp_path / "ray", **kw), address=None, progress=False, num_workers=2)
    return _rows(tmp_path / "local"), _rows(tmp_path / "ray"), summary


LOSS_KEYS = ("loss", "grad_norm", "teacher_loss", "student_loss", "reward_mean", "success", "tokens")


def _same_steps(a: list[dict], b: list[dict]) -> None:
    assert [r["phase"] for r in a] == [r["phase"] for r in b]
    for ra, rb in zip(a, b):
        for k in LOSS_KEYS:
            if k in ra:
                assert math.isclose(ra[k], rb[k], rel_tol=1e-4, abs_tol=1e-6), (ra["step"], k, ra[k], rb[k])
    assert a[-1]["eval"]["by_length"] == b[-1]["eval"]["by_length"]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("algorithm,extra", [
    ("grpo", {"max_off_policy_steps": 0}),
    ("pi_distill", {}),
    ("opsd", {}),
    ("grpo", {"lora": {"r": 4, "alpha": 8}, "learning_rate": 5e-2}),
], ids=["grpo", "pi_distill", "opsd", "grpo_lora"])
def test_ray_training_equals_local_training(ray_cluster, tmp_path, algorithm, extra):
    """Rewards: the verifiable check + a rubric that pays for brief replies (the tiny model
    fails the check, so the rubric is what varies within a group)."""
    rubric = tmp_path / "brief.yaml"
    rubric.write_text(BRIEF)
    judges = dict(judges=["verifiable", {"rubric": str(rubric), "checks_only": True}], judge_combine="weighted_sum")
    local, ray_rows, summary = _train_both(tmp_path, algorithm=algorithm, **judges, **extra)
    rl = [r for r in local if r["phase"] == algorithm]
    # a real update was compared (GRPO's on-policy loss is 0 by construction: its gradient is not)
    assert len(rl) == 2 and any(abs(r["loss"]) > 1e-6 or r.get("grad_norm", 0) > 1e-6 for r in rl), rl
    _same_steps(local, ray_rows)
    assert summary["ray"]["workers"] == 2 and summary["ray"]["failed_rollouts"] == 0
    if algorithm == "grpo":  # the rubric's credit reached the workers' rewards
        assert any(r["reward_mean"] > r["success"] for r in ray_rows if r["phase"] == "grpo"), ray_rows


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sft_on_ray_is_local_sft(tmp_path):
    """Nothing to roll out: ``--ray`` trains SFT in the driver, identically."""
    from toolzoo.cluster.ray_train import train_on_ray
    from toolzoo.trainer.loop import train

    kw = dict(algorithm="sft", steps=3, sft={"episodes": 6, "batch_size": 4})
    train(_config(tmp_path / "local", **kw), progress=False)
    train_on_ray(_config(tmp_path / "ray", **kw), address=None, progress=False)
    _same_steps(_rows(tmp_path / "local"), _rows(tmp_path / "ray"))
