"""``toolzoo run --ray [ADDRESS]``: the run driver with episodes on Ray rollout workers.

Same contract as :class:`toolzoo.envs.runner.Runner`: the same jobs and deterministic
episode ids, the same store (the driver is its only writer, appending each episode as it
arrives), ``--resume``/``--overwrite``, the same summary dict and summary.json (plus a
``ray`` block). Workers that die mid-run have their unfinished episodes re-run on the others
while a replacement starts; an episode id already stored is never stored again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from toolzoo.cluster.actors import (
    BUILD_JUDGES,
    Done,
    ResilientPool,
    judge_pool,
    judges_available,
    judges_needed,
    rollout_pool,
    wait_any,
)
from toolzoo.cluster.ray_setup import init_ray
from toolzoo.core import Outcome, Task, Trajectory
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.runner import Job, Runner, RunProgress, _merge_json, plan_jobs, summarize, timing_summary
from toolzoo.envs.taskgen import TaskGenerationError


class RayRunner:
    """One run on Ray. ``pool`` (and ``judges``) are live during :meth:`run`, so a caller's
    ``on_episode`` can inspect or kill workers."""

    def __init__(self, config: RunConfig, *, address: str | None = None, resume: bool = False,
                 overwrite: bool = False, num_workers: int | None = None, worker_cpus: float = 1.0,
                 judge_workers: int = 1, judges_factory: str | None = None,
                 on_episode: Callable[[Trajectory], None] | None = None,
                 run_id: str | None = None, num_cpus: int | None = None, object_store_mb: int | None = None,
                 base_dir: str | Path | None = None, retry_infra: bool = False):
        self.config = config
        self.address = address
        self.num_workers = num_workers
        self.worker_cpus = worker_cpus
        self.judge_workers = judge_workers
        self.judges_factory = judges_factory  # "module:function" like build_judges; default the rubrics one
        self.on_episode = on_episode
        self.ray_kwargs = {"num_cpus": num_cpus, "object_store_mb": object_store_mb}
        # The plain Runner owns what both drivers share: output folder, store, resume, episode ids.
        self.base_dir = None if base_dir is None else str(base_dir)  # where relative rubric paths start
        kw = {"base_dir": base_dir} if base_dir is not None else {}
        self.local = Runner(config, resume=resume, overwrite=overwrite, run_id=run_id, retry_infra=retry_infra, **kw)
        self.pool: ResilientPool | None = None
        self.judges: ResilientPool | None = None
        self.duplicates = 0
        self._judging: dict[str, str] = {}  # episode id -> trajectory JSON waiting for its judges

    def run(self, progress: bool = True) -> dict[str, Any]:
        jobs = self.local.prepare()  # before Ray starts: a FileExistsError should cost nothing
        info = init_ray(self.address, **self.ray_kwargs)
        store = self.local.store
        stored = store.repair()  # ids already on disk: the dedupe set
        suite = getattr(self.local.tasks, "suite", None)  # a hand-written task suite, if the run has one
        total = len(plan_jobs(self.config, suite) if suite is not None else plan_jobs(self.config))
        want_judges = judges_needed(self.config) and (self.judges_factory is not None or judges_available())
        size = self.num_workers or max(1, int(info.cpus // max(self.worker_cpus, 1e-9)) or 1)
        size = max(1, min(size, len(jobs) or 1))
        started = time.perf_counter()

        def keep(traj: Trajectory) -> None:
            if traj.episode_id in stored:
                self.duplicates += 1
                return
            store.append(traj)
            stored.add(traj.episode_id)
            if self.on_episode:
                self.on_episode(traj)
            bar.record(traj)
            self.local.note_harness(traj)  # raises past max_harness_failures in a row

        bar = RunProgress(total, len(stored), enabled=progress)
        try:
            with bar:
                if jobs:
                    self.pool = rollout_pool(self.config, self.local.run_id, size=size, worker_cpus=self.worker_cpus,
                                             base_dir=self.base_dir)
                    if want_judges:
                        self.judges = judge_pool(self.config, str(self.local.out), size=self.judge_workers,
                                                 factory=self.judges_factory or BUILD_JUDGES, base_dir=self.base_dir)
                    for job in jobs:
                        self.pool.submit(job, job)
                    self._drive(keep)
        finally:
            store.close()
            if self.pool is not None:  # drain the workers' warm sandboxes before killing them
                _drain(self.pool)
            for pool in (self.pool, self.judges):
                if pool is not None:
                    pool.shutdown()
        trajectories = list(store)
        summary = summarize(trajectories)
        if judges_available():  # the rubric blocks the asyncio Runner adds
            from toolzoo.rubrics.apply import summary_blocks

            summary.update(summary_blocks(trajectories))
        summary["timing"] = timing_summary(trajectories)
        summary["seconds"] = round(time.perf_counter() - started, 3)
        summary["run"] = self.config.run
        summary["ray"] = {"address": info.address, "workers": size,
                          "worker_restarts": self.pool.restarts if self.pool else 0,
                          "redispatched": self.pool.redispatched if self.pool else 0,
                          "duplicates_dropped": self.duplicates,
                          "judge_workers": self.judge_workers if self.judges else 0}
        _merge_json(self.local.out / "summary.json", summary)
        return summary

    def _drive(self, keep: Callable[[Trajectory], None]) -> None:
        pool, judges = self.pool, self.judges
        assert pool is not None
        while pool.pending() or (judges is not None and judges.pending()):
            pool.fill()
            if judges is not None:
                judges.fill()
            ready = wait_any(pool.refs() + (judges.refs() if judges else []))
            for done in pool.collect(ready):
                traj = self._trajectory(done)
                if judges is not None and done.error is None:
                    self._judging[traj.episode_id] = done.value
                    judges.submit(traj.episode_id, done.value)
                else:
                    keep(traj)
            if judges is not None:
                for done in judges.collect(ready):
                    unjudged = self._judging.pop(done.key)  # type: ignore[arg-type]
                    keep(Trajectory.model_validate_json(done.value) if done.error is None
                         else _judge_failure(unjudged, done.error))

    def _trajectory(self, done: Done) -> Trajectory:
        if done.error is None:
            return Trajectory.model_validate_json(done.value)
        job: Job = done.key  # type: ignore[assignment]
        eid = self.local._episode_id(job)
        try:
            task = self.local.tasks.get(job)
        except TaskGenerationError:
            task = Task(id=eid.rsplit("-t", 1)[0], domain=job.domain, seed=job.task_seed, length=job.length,
                        subtasks=[])
        return Trajectory(episode_id=eid, task=task, trial=job.trial, outcome=Outcome.infra(f"ray: {done.error}"))


def _judge_failure(traj_json: str, error: str) -> Trajectory:
    """The judge worker kept dying: a judge failure, excluded as the asyncio path excludes one."""
    traj = Trajectory.model_validate_json(traj_json)
    traj.outcome = Outcome.judge_failed(f"ray judge worker: {error}", traj.outcome)
    return traj


def _drain(pool: ResilientPool, timeout: float = 60.0) -> None:
    import ray

    try:
        ray.get([h.aclose.remote() for h in pool.handles], timeout=timeout)
    except Exception:  # noqa: BLE001 - a dead worker's sandboxes are the reaper's (toolzoo sandbox gc)
        pass


def run_on_ray(config: RunConfig, *, address: str | None = None, resume: bool = False, overwrite: bool = False,
               num_workers: int | None = None, progress: bool = True, **kwargs: Any) -> dict[str, Any]:
    """Run ``config`` on Ray (a local cluster capped for small machines when ``address`` is None)
    and return the same summary dict as ``Runner.run`` (plus ``summary["ray"]``). Raises
    FileExistsError like the Runner when the output exists without resume/overwrite."""
    return RayRunner(config, address=address, resume=resume, overwrite=overwrite, num_workers=num_workers,
                     **kwargs).run(progress=progress)
