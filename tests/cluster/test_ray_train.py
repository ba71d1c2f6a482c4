"""`toolzoo train --ray`: GRPO with 2 rollout-worker actors and a learner actor on a real local
Ray cluster (2 CPUs, 150 MB object store, short temp dir), a tiny model and the tiny shop:
metrics, checkpoints, evaluation, bounded staleness; the CLI end to end; and the grouping of
episodes into the feed (property-tested, no Ray)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.cluster.learner import VERSION_KEY, TrajectoryFeed
from toolzoo.cluster.ray_train import GroupAssembler
from toolzoo.core import Outcome, Task, Trajectory
from toolzoo.tools.zoo import get_domain
from toolzoo.trainer.config import TrainConfig

DOMAIN = str(Path(__file__).parents[1] / "trainer" / "data" / "tiny_shop.yaml")
TINY = {"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "num_heads": 2, "num_kv_heads": 1}
os.environ.setdefault("OMP_NUM_THREADS", "2")


def _config(out: Path, **kw) -> dict:
    base = dict(train="t", algorithm="grpo", model={"tiny": TINY}, domains=[DOMAIN], lengths=[1],
                steps=3, batch=2, group_size=2, learning_rate=1e-3, max_turns=3,
                sft={"episodes": 6, "steps": 2, "batch_size": 4},
                eval={"every": 2, "lengths": [1], "tasks_per_length": 2}, rollout={"max_new_tokens": 8},
                checkpoint_every=2, output=str(out), threads=1)
    base.update(kw)
    return base


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cli_train_ray(tmp_path):
    """``python -m toolzoo.cli train CONFIG --ray``: a local cluster of its own (this machine's
    CPUs, 150 MB object store, temp dir from TOOLZOO_RAY_TMP), the default staleness bound (1),
    the local trainer's outputs and printout."""
    import yaml

    out = tmp_path / "cli"
    cfg = _config(out, steps=2, sft={"episodes": 6, "steps": 0, "batch_size": 4}, eval={"lengths": [1], "tasks_per_length": 2},
                  checkpoint_every=0)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "TOOLZOO_RAY_TMP": "/tmp/tzray-cli", "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "toolzoo.cli", "train", str(path), "--ray"], env=env,
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "length 1: success" in proc.stdout and "final checkpoint" in proc.stdout
    rows = _rows(out)
    assert [r["phase"] for r in rows] == ["grpo", "grpo"] and rows[-1]["eval"]["by_length"]["1"]["n"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ray"]["workers"] == 2 and summary["ray"]["feed"]["max_lag"] <= 1
    assert (out / "final" / "config.json").exists()


@pytest.fixture(scope="module")
def run(ray_cluster, tmp_path_factory):
    from toolzoo.cluster.ray_train import train_on_ray

    out = tmp_path_factory.mktemp("raytrain") / "run"
    cfg = TrainConfig.model_validate(_config(out))
    return out, train_on_ray(cfg, address=None, progress=False, max_off_policy_steps=1, num_workers=2)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_grpo_on_ray_metrics_staleness_eval(run):
    out, summary = run
    rows = _rows(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["phase"] for r in rows] == ["sft", "sft", "grpo", "grpo", "grpo"]
    grpo = rows[2:]
    # the learner's version before each step, and every consumed episode within the bound; at
    # version 2 nothing from version 0 is allowed, so the workers did receive new weights
    assert [r["policy_version"] for r in grpo] == [0, 1, 2]
    assert all(0 <= r["lag_max"] <= 1 and r["episodes"] == 4 for r in grpo)
    assert all({"loss", "reward_mean", "success", "lr", "seconds", "wait_s", "learner_s"} <= set(r) for r in grpo)
    # evaluation every 2 steps (an SFT step and a GRPO step) and at the end, as the local trainer
    assert [("eval" in r) for r in rows] == [False, True, False, True, True]
    assert rows[-1]["eval"]["by_length"]["1"]["n"] == 2 and summary["eval"] == rows[-1]["eval"]
    assert (out / "eval" / "trajectories.jsonl").exists()

    ray_block = summary["ray"]
    feed = ray_block["feed"]
    assert feed["consumed"] == 12 and feed["max_lag"] <= 1
    # two batches start under version 0 at once: the second is consumed at version 1
    assert feed["lags"].get(1, 0) >= 4
    assert len(ray_block["episodes_by_worker"]) == 2  # both workers ran episodes
    assert ray_block["worker_restarts"] == 0 and ray_block["failed_rollouts"] == 0
    assert ray_block["old_logprobs"] == "sampled"
    assert summary["steps"] == 5 and Path(summary["final"]) == out / "final"
    assert {"train", "algorithm", "steps", "seconds", "last", "eval", "final", "metrics"} <= set(summary)
    assert json.loads((out / "summary.json").read_text())["steps"] == 5


@pytest.mark.slow
def test_grpo_on_ray_checkpoints(run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = run
    for name in ("checkpoints/step_0", "checkpoints/step_2", "checkpoints/step_4", "final"):
        model = AutoModelForCausalLM.from_pretrained(out / name)
        assert model.config.hidden_size == 32 and AutoTokenizer.from_pretrained(out / name).eos_token == "<|im_end|>"
    state = torch.load(out / "checkpoints" / "step_4" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 4 and state["phase"] == "grpo" and state["optimizer"]["state"]
    sft = torch.load(out / "checkpoints" / "step_2" / "trainer_state.pt", weights_only=False)
    assert sft["phase"] == "sft" and sft["step"] == 2


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_grpo_on_ray_resume(run, tmp_path):
    import shutil

    from toolzoo.cluster.ray_train import train_on_ray

    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "final")
    cfg = TrainConfig.model_validate(_config(copy, steps=4))  # one more GRPO step than was run
    summary = train_on_ray(cfg, address=None, resume=True, progress=False, num_workers=2)
    rows = _rows(copy)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # 5 and 6 after step_4, nothing twice
    assert [r.get("policy_version") for r in rows[4:]] == [2, 3]  # the learner resumed at version 2
    assert summary["steps"] == 6 and (copy / "final" / "config.json").exists()


@pytest.mark.slow
def test_learner_step_and_weights_without_ray(run):
    """The learner actor's class in-process: a group with a reward difference moves the
    weights; versions, lags and the state dict it broadcasts follow."""
    import torch

    from toolzoo.cluster.ray_train import GRPOLearner, load_policy_weights, pack_checkpoint
    from toolzoo.envs.factories import AgentFactory
    from toolzoo.envs.run_config import AgentConfig

    out, _ = run
    cfg = TrainConfig.model_validate(_config(out, threads=1))
    sources = {get_domain(d).name: d for d in cfg.domains}  # as train_on_ray passes them
    learner = GRPOLearner(cfg.model_dump_json(), pack_checkpoint(out / "final", weights=True), sources,
                          start_version=3)
    trajs = [Trajectory.model_validate_json(line) for line in (out / "eval" / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajs) == 2
    for t, reward, tag in zip(trajs, (1.0, 0.0), (3, 2)):
        t.outcome = t.outcome.model_copy(update={"reward": reward})
        t.meta[VERSION_KEY] = tag
    before = learner.weights()["state_dict"]
    row = learner.step(trajs)
    assert learner.version() == 4 and row["policy_version"] == 3 and row["lag_max"] == 1 and row["lag_mean"] == 0.5
    assert row["reward_std"] > 0 and row["groups_kept"] == 1
    after = learner.weights()
    assert after["version"] == 4 and not any(n.endswith(".safetensors") for n in after["files"])
    assert any(not torch.equal(before[k], after["state_dict"][k]) for k in before)

    # a rollout worker on a node without the driver's checkpoint folder: built from the shipped
    # config and tokenizer files, then the learner's state dict copied in
    agents = AgentFactory(AgentConfig(kind="hf", path=str(out / "nowhere"), max_new_tokens=4))
    load_policy_weights(agents, after, 4)
    agent = agents.make()
    assert agent.generator is not None  # its own sampling stream
    assert all(torch.equal(v, after["state_dict"][k]) for k, v in agent.model.state_dict().items())
    # the next version goes into the same agent, in place
    load_policy_weights(agents, {"files": after["files"], "state_dict": before, "version": 5}, 5)
    assert agents.make() is agent
    assert all(torch.equal(v, before[k]) for k, v in agent.model.state_dict().items())


# --------------------------------------------------------------------------- grouping, no Ray


def _traj(group: int, member: int, tag: int, failure: str | None = None) -> Trajectory:
    task = Task(id=f"g{group}", domain="d", seed=group, length=1, subtasks=[])
    traj = Trajectory(episode_id=f"g{group}-t{member}", task=task, trial=member,
                      outcome=Outcome(success=failure is None, reward=1.0 if failure is None else 0.0, failure=failure))
    traj.meta[VERSION_KEY] = tag
    return traj


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 4),
    max_off=st.integers(0, 2),
    groups=st.lists(st.tuples(st.lists(st.integers(0, 6), min_size=4, max_size=4), st.booleans()),
                    min_size=1, max_size=12),
    order_seed=st.randoms(use_true_random=False),
    batch_groups=st.integers(1, 3),
    learner=st.integers(0, 8),
)
def test_groups_enter_the_feed_whole_and_fresh(size, max_off, groups, order_seed, batch_groups, learner):
    """Episodes finish in any order; the feed hands out only whole groups, with every member
    (not just the oldest) within max_off_policy_steps; infra-failed groups never get there."""
    feed = TrajectoryFeed(max_off, capacity=1000 * size)
    asm = GroupAssembler(size, feed)
    events = [(g, k, tags[k], infra) for g, (tags, infra) in enumerate(groups) for k in range(size)]
    order_seed.shuffle(events)
    completed = 0
    for g, k, tag, infra in events:
        tag = min(tag, learner)  # no episode is newer than the learner
        failure = "infra" if infra and k == size - 1 else None
        completed += asm.add(g, k, _traj(g, k, tag, failure))
    assert asm.episodes() == 0
    assert completed + asm.dropped == len(groups) and asm.dropped == sum(infra for _, infra in groups)
    assert feed.stats.received == completed * size
    while (batch := feed.take(batch_groups * size, learner)) is not None:
        for i in range(0, len(batch), size):
            chunk = batch[i:i + size]
            assert len({t.task.id for t in chunk}) == 1 and sorted(t.trial for t in chunk) == list(range(size))
            assert all(learner - t.meta[VERSION_KEY] <= max_off for t in chunk)
            assert all(t.outcome.failure is None for t in chunk)
    s = feed.stats
    assert s.received == s.consumed + s.dropped_stale + s.dropped_overflow + len(feed)
    assert len(feed) % size == 0 and s.dropped_stale % size == 0


def test_a_group_is_as_old_as_its_oldest_episode():
    feed = TrajectoryFeed(1)
    asm = GroupAssembler(2, feed)
    assert asm.add(0, 0, _traj(0, 0, 0)) is False
    assert asm.add(0, 1, None) is False  # its workers kept dying: the group goes
    assert asm.dropped == 1 and len(feed) == 0
    assert asm.add(1, 1, _traj(1, 1, 3)) is False and asm.add(1, 0, _traj(1, 0, 2)) is True
    assert asm.add(2, 0, _traj(2, 0, 3)) is False and asm.add(2, 1, _traj(2, 1, 3)) is True
    # at learner version 4 group 1 (versions 2 and 3) is too old as a whole; group 2 is not
    batch = feed.take(2, 4)
    assert [t.episode_id for t in batch] == ["g2-t0", "g2-t1"]
    assert feed.stats.dropped_stale == 2


def test_local_and_ray_training_share_one_driver(tmp_path):
    """Both paths set up, seed, warm up, log, evaluate and save through ``trainer.driver``:
    with the same config, the driver-side SFT warm-up (no GRPO steps, so no cluster is
    started) gives the same loss at every step, the same evaluation, the same files."""
    from toolzoo.cluster.ray_train import train_on_ray
    from toolzoo.trainer.loop import train

    kw = dict(steps=0, sft={"episodes": 6, "steps": 3, "batch_size": 4}, eval={"lengths": [1], "tasks_per_length": 2},
              checkpoint_every=2)
    local = train(TrainConfig.model_validate(_config(tmp_path / "local", **kw)), progress=False)
    ray_side = train_on_ray(TrainConfig.model_validate(_config(tmp_path / "ray", **kw)), address=None, progress=False)
    a, b = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert [r["phase"] for r in a] == ["sft"] * 3 == [r["phase"] for r in b]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]  # same seeds, batches, optimizer and schedule
    assert a[-1]["eval"]["by_length"] == b[-1]["eval"]["by_length"]
    assert set(ray_side) - set(local) == {"ray"} and ray_side["ray"] == {} and local["device"] == ray_side["device"]
    for out in ("local", "ray"):
        got = {p.relative_to(tmp_path / out).as_posix() for p in (tmp_path / out).rglob("*") if p.is_file()}
        assert {"config.yaml", "metrics.jsonl", "summary.json", "final/config.json",
                "checkpoints/step_0/config.json", "checkpoints/step_2/trainer_state.pt"} <= got, got
