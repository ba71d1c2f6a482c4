"""`toolzoo run --ray` on a real local Ray cluster (2 CPUs, 150 MB object store): workers and
drivers killed mid-run lose nothing and store nothing twice; judge workers; the learner feed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from toolzoo.cluster.learner import LearnerActor, train_on_ray  # noqa: E402
from toolzoo.cluster.ray_runner import RayRunner, run_on_ray  # noqa: E402
from toolzoo.envs.runner import Runner, plan_jobs  # noqa: E402

from .conftest import make_config  # noqa: E402
from .fake_judges import fails  # noqa: E402
from .fake_learner import CountingLearner  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def stored(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]


def planned_ids(config) -> set[str]:
    runner = Runner(config)
    return {runner._episode_id(j) for j in plan_jobs(config)}


def test_killed_worker_loses_nothing_and_counts_nothing_twice(ray_cluster, tmp_path):
    reference = asyncio.run(Runner(make_config(str(tmp_path / "plain"))).run(progress=False))
    config = make_config(str(tmp_path / "ray"))
    killed: list[str] = []

    def kill_one(traj) -> None:
        slot = runner.pool.slots[0]
        # the victim must die with episodes in flight: the first moment after 40 results when it
        # has some (on a loaded machine it can be idle just then)
        if not killed and len(kill_one.seen) >= 40 and slot.inflight:
            ray.kill(slot.handle)
            killed.append(traj.episode_id)
        kill_one.seen.append(traj.episode_id)

    kill_one.seen = []
    runner = RayRunner(config, num_workers=2, on_episode=kill_one)
    summary = runner.run(progress=False)

    assert killed
    rows = stored(Path(config.output))
    ids = [r["episode_id"] for r in rows]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert set(ids) == planned_ids(config)
    assert summary["episodes"] == 200
    assert sum(row["episodes"] for row in summary["by_length"].values()) == 200
    assert summary["by_length"] == reference["by_length"]  # same episodes, same outcomes as asyncio
    assert summary["ray"]["worker_restarts"] == 1 and summary["ray"]["redispatched"] >= 1
    assert json.loads((Path(config.output) / "summary.json").read_text())["episodes"] == 200
    assert {r["meta"]["worker"].split(".")[0] for r in rows} == {"rollout-0", "rollout-1"}


DRIVER = """
import sys
from toolzoo.cluster.ray_runner import run_on_ray
from toolzoo.envs.run_config import RunConfig
config = RunConfig.model_validate_json(open(sys.argv[1]).read())
run_on_ray(config, address=sys.argv[2], num_workers=2, progress=False)
"""


def test_resume_after_the_driver_is_killed(ray_cluster, tmp_path):
    config = make_config(str(tmp_path / "run"))
    cfg = tmp_path / "config.json"
    cfg.write_text(config.model_dump_json())
    store = Path(config.output) / "trajectories.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(cfg), ray_cluster.address],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not (store.exists() and store.read_bytes().count(b"\n") >= 30):
            assert proc.poll() is None, "driver exited before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = stored(Path(config.output))
    assert 30 <= len(before) < 200
    with store.open("a") as f:  # a write torn by the kill
        f.write('{"episode_id": "retail_orders-s')

    with pytest.raises(FileExistsError):
        run_on_ray(config, progress=False)
    summary = run_on_ray(config, resume=True, num_workers=2, progress=False)

    ids = [r["episode_id"] for r in stored(Path(config.output))]
    assert len(ids) == len(set(ids)) == 200
    assert set(ids) == planned_ids(config)
    assert ids[:len(before)] == [r["episode_id"] for r in before]  # what was stored stays, in place
    assert summary["episodes"] == 200


def test_judge_workers_score_and_survive_a_kill(ray_cluster, tmp_path):
    config = make_config(str(tmp_path / "judged"), tasks_per_length=10,
                         judges=["verifiable", {"rubric": "fake"}])
    killed: list[bool] = []

    def kill_judge(traj) -> None:
        if not killed:
            ray.kill(runner.judges.slots[0].handle)
            killed.append(True)

    runner = RayRunner(config, num_workers=2, judges_factory="tests.cluster.fake_judges:build_judges",
                       on_episode=kill_judge)
    summary = runner.run(progress=False)

    rows = stored(Path(config.output))
    assert killed and summary["ray"]["judge_workers"] == 1
    assert len({r["episode_id"] for r in rows}) == len(rows) == 40
    failing = [r for r in rows if fails(r["episode_id"])]
    assert summary["judge_errors"] == len(failing)
    for r in rows:
        if fails(r["episode_id"]):
            assert r["outcome"]["failure"] == "judge"
        else:
            assert r["scores"]["fake"]["value"] == len(r["calls"])
            assert "verifiable" in r["scores"]


@pytest.mark.parametrize("bound", [0, 1])
def test_learner_gets_only_fresh_trajectories(ray_cluster, tmp_path, bound):
    assert isinstance(CountingLearner(), LearnerActor)
    config = make_config(str(tmp_path / "train"), tasks_per_length=5)
    steps_seen: list[int] = []

    def on_step(step, metrics) -> None:
        assert metrics["loss"] == 8.0
        steps_seen.append(step)

    result = train_on_ray(config, CountingLearner, steps=4, batch_size=8, max_off_policy_steps=bound,
                          num_workers=2, load_weights=load_weights_path(), on_step=on_step,
                          finalize=lambda handle: ray.get(handle.history.remote()))
    history = result.final
    assert steps_seen == [1, 2, 3, 4]
    assert result.steps == 4 and result.version == 4 and len(history) == 4
    for step, batch in enumerate(history):
        assert batch["version"] == step
        assert len(batch["tags"]) == 8
        assert all(0 <= step - tag <= bound for tag in batch["tags"])
    assert result.feed.max_lag <= bound
    assert result.feed.consumed == 32
    if bound == 0:  # rollouts that overlapped a 0.3 s learner step are stale at once
        assert result.feed.dropped_stale > 0
    ids = [i for b in history for i in b["ids"]]
    assert len(set(ids)) == len(ids)


def load_weights_path():
    from .fake_learner import load_weights

    return load_weights


def test_local_cluster_is_capped_and_init_is_idempotent(ray_cluster):
    from toolzoo.cluster.ray_setup import init_ray

    assert init_ray(None, num_cpus=8) is ray_cluster  # joined already: the first call's caps stand
    resources = ray.cluster_resources()
    assert resources["CPU"] == 2
    assert resources["object_store_memory"] <= 150 * 1024 * 1024
    assert ray_cluster.local and ray_cluster.temp_dir == "/tmp/tzray-test"


def test_a_judge_failing_on_30_percent_leaves_the_rate_honest_in_runner_ray_and_analysis(ray_cluster, tmp_path):
    """Judge failures are excluded whatever their verifiable verdict, identically on every path:
    the reported rate stays inside the binomial interval of the true rate."""
    import math

    from toolzoo.analysis.data import load_run, success_by_length
    from toolzoo.envs.scorer import Scorer

    from . import flaky_judges

    judges = ["verifiable", {"rubric": "flaky"}]
    plain = make_config(str(tmp_path / "plain"), tasks_per_length=150, lengths=[1], p=0.5, judges=judges)
    runner = Runner(plain)
    runner.build_scorer = lambda: Scorer(flaky_judges.build_judges(judges))
    by_runner = asyncio.run(runner.run(progress=False))
    on_ray = make_config(str(tmp_path / "ray"), tasks_per_length=150, lengths=[1], p=0.5, judges=judges)
    by_ray = RayRunner(on_ray, num_workers=2, judges_factory="tests.cluster.flaky_judges:build_judges").run(progress=False)

    for config, summary in ((plain, by_runner), (on_ray, by_ray)):
        rows = stored(Path(config.output))
        assert len(rows) == 150
        truth = [r["scores"]["verifiable"]["value"] for r in rows]  # the verdict every episode earned
        true_rate = sum(truth) / len(truth)
        judge_failed = [r for r in rows if r["outcome"]["failure"] == "judge"]
        assert {r["episode_id"] for r in judge_failed} == {r["episode_id"] for r in rows if flaky_judges.fails(r["episode_id"])}
        assert any(r["outcome"]["success"] for r in judge_failed) and not all(r["outcome"]["success"] for r in judge_failed)
        n = len(rows) - len(judge_failed)
        half_width = 2.576 * math.sqrt(true_rate * (1 - true_rate) / n)  # 99% binomial interval
        analysed = success_by_length(load_run(config.output))[0]
        assert summary["judge_errors"] == len(judge_failed)
        for rate, counted in ((summary["by_length"]["1"]["rate"], summary["by_length"]["1"]["episodes"]),
                              (analysed.rate, analysed.n)):
            assert counted == n
            assert abs(rate - true_rate) <= half_width, (rate, true_rate)
    # the same episodes (deterministic agent and judge) give the same count on every path
    assert by_runner["by_length"] == by_ray["by_length"]
