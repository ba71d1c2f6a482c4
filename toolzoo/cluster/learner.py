"""Rollouts feeding a learner with bounded staleness.

Rollout workers tag each trajectory with the policy version it was generated under
(``traj.meta["policy_version"]``). The learner is at version ``v`` after ``v`` steps. A
trajectory's lag is ``v - tag``; the :class:`TrajectoryFeed` hands the learner only
trajectories with lag <= ``max_off_policy_steps`` (older ones are dropped) and makes it wait
until a full batch of fresh ones is there. On the producer side, :func:`train_on_ray` keeps at
most ``batch_size * (max_off_policy_steps + 1)`` episodes buffered or in flight, since any
more would go stale before the learner could use them.

``max_off_policy_steps = 0`` is strictly on-policy: rollouts that overlap a learner step are
discarded. Larger values trade freshness for throughput (rollouts continue while the learner
trains).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from pydantic import BaseModel

from toolzoo.core import Trajectory
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.runner import Job, TaskCache, plan_jobs

VERSION_KEY = "policy_version"


@runtime_checkable
class LearnerActor(Protocol):
    """What :func:`train_on_ray` drives, wrapped in a Ray actor (GPU options via
    ``learner_options``). The trainer's GRPO / π-Distill learners implement it."""

    def version(self) -> int:
        """Number of optimizer steps taken: the version of the weights it holds."""
        ...

    def step(self, batch: list[Trajectory]) -> dict[str, float]:
        """One update on ``batch`` (every trajectory within the staleness bound); increments
        :meth:`version`; returns metrics."""
        ...

    def weights(self) -> Any:
        """The current policy for rollout workers (a state dict, a checkpoint path, a vLLM
        LoRA name...), handed to ``load_weights`` in every worker; None for scripted agents."""
        ...


class FeedStats(BaseModel):
    received: int = 0
    consumed: int = 0
    dropped_stale: int = 0
    dropped_overflow: int = 0
    max_lag: int = 0  # the largest lag among consumed trajectories
    lags: dict[int, int] = {}  # lag -> trajectories consumed with it


class TrajectoryFeed:
    """FIFO of tagged trajectories between rollout workers and one learner."""

    def __init__(self, max_off_policy_steps: int, capacity: int = 4096):
        if max_off_policy_steps < 0:
            raise ValueError("max_off_policy_steps must be >= 0")
        self.max_off_policy_steps = max_off_policy_steps
        self.capacity = capacity
        self.stats = FeedStats()
        self._items: deque[tuple[int, Trajectory]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, traj: Trajectory, version: int | None = None) -> None:
        v = int(traj.meta.get(VERSION_KEY, 0)) if version is None else version
        self._items.append((v, traj))
        self.stats.received += 1
        while len(self._items) > self.capacity:  # the oldest are the first to go stale anyway
            self._items.popleft()
            self.stats.dropped_overflow += 1

    def take(self, n: int, learner_version: int) -> list[Trajectory] | None:
        """``n`` trajectories fresh enough for a learner at ``learner_version``, oldest first;
        None (the learner waits) until there are that many."""
        fresh: deque[tuple[int, Trajectory]] = deque()
        for v, traj in self._items:
            if v > learner_version:
                raise ValueError(f"trajectory {traj.episode_id} has policy version {v} > learner {learner_version}")
            if learner_version - v > self.max_off_policy_steps:
                self.stats.dropped_stale += 1
            else:
                fresh.append((v, traj))
        self._items = fresh
        if len(fresh) < n:
            return None
        batch = [fresh.popleft() for _ in range(n)]
        for v, _ in batch:
            lag = learner_version - v
            self.stats.lags[lag] = self.stats.lags.get(lag, 0) + 1
            self.stats.max_lag = max(self.stats.max_lag, lag)
        self.stats.consumed += n
        return [t for _, t in batch]


def job_stream(config: RunConfig) -> Iterator[Job]:
    """The run's jobs, over and over; each pass gets fresh trial numbers, so episode ids stay
    unique and seeded agents draw new randomness."""
    suite = getattr(TaskCache(config), "suite", None)
    base = plan_jobs(config, suite) if suite is not None else plan_jobs(config)
    for epoch in itertools.count():
        for job in base:
            yield dataclasses.replace(job, trial=job.trial + epoch * config.trials)


@dataclass
class TrainOnRayResult:
    steps: int
    version: int
    metrics: list[dict[str, float]] = field(default_factory=list)
    feed: FeedStats = field(default_factory=FeedStats)
    worker_restarts: int = 0
    redispatched: int = 0
    failed_rollouts: int = 0
    final: Any = None  # what ``finalize(learner_handle)`` returned


def train_on_ray(config: RunConfig, learner: type, *, steps: int, batch_size: int, max_off_policy_steps: int = 1,
                 address: str | None = None, num_workers: int = 2, worker_cpus: float = 1.0,
                 learner_args: tuple = (), learner_kwargs: dict[str, Any] | None = None,
                 learner_options: dict[str, Any] | None = None,
                 load_weights: Callable[[Any, Any, int], None] | None = None,
                 on_step: Callable[[int, dict[str, float]], None] | None = None,
                 finalize: Callable[[Any], Any] | None = None, num_cpus: int | None = None,
                 object_store_mb: int | None = None) -> TrainOnRayResult:
    """Train ``learner`` (a class implementing :class:`LearnerActor`, started as a Ray actor
    with ``learner_options`` such as ``{"num_gpus": 1}``) for ``steps`` steps of ``batch_size``
    trajectories produced by ``num_workers`` rollout workers running ``config``'s episodes.

    After every step the learner's ``weights()`` go to every worker, which calls
    ``load_weights(agent_factory, weights, version)`` (e.g. swap the HF agent's state dict or
    point the openai agent at a new LoRA) before its next episodes. ``finalize(handle)`` runs on
    the learner's actor handle before it is shut down (save a checkpoint, fetch weights).
    """
    import ray

    from toolzoo.cluster.actors import rollout_pool, wait_any
    from toolzoo.cluster.ray_setup import init_ray

    init_ray(address, num_cpus=num_cpus, object_store_mb=object_store_mb)
    feed = TrajectoryFeed(max_off_policy_steps, capacity=max(4096, 4 * batch_size))
    actor = ray.remote(learner).options(**(learner_options or {})).remote(*learner_args, **(learner_kwargs or {}))
    version = int(ray.get(actor.version.remote()))
    weights_ref = actor.weights.remote()
    pool = rollout_pool(config, f"{config.run}-train", size=num_workers, worker_cpus=worker_cpus,
                        load_weights=load_weights)
    for handle in pool.handles:
        handle.set_policy.remote(version, weights_ref)
    # A replacement for a dead worker starts on the current policy, not version 0.
    pool.on_new_actor = lambda handle: handle.set_policy.remote(version, weights_ref)
    result = TrainOnRayResult(steps=0, version=version, feed=feed.stats)
    jobs = job_stream(config)
    budget = batch_size * (max_off_policy_steps + 1)
    step_ref = None
    try:
        while result.steps < steps:
            while pool.pending() + len(feed) < budget:
                job = next(jobs)
                pool.submit(job, job)
            pool.fill()
            ready = wait_any(pool.refs() + ([step_ref] if step_ref is not None else []))
            for done in pool.collect(ready):
                if done.error is not None:
                    result.failed_rollouts += 1
                    continue
                feed.put(Trajectory.model_validate_json(done.value))
            if step_ref is not None and step_ref in ready:
                metrics = ray.get(step_ref)
                step_ref = None
                version = int(ray.get(actor.version.remote()))
                weights_ref = actor.weights.remote()
                for handle in pool.handles:
                    handle.set_policy.remote(version, weights_ref)
                result.steps += 1
                result.version = version
                result.metrics.append(metrics)
                if on_step:
                    on_step(result.steps, metrics)
            if step_ref is None and result.steps < steps:
                batch = feed.take(batch_size, version)
                if batch is not None:
                    step_ref = actor.step.remote(batch)
        if finalize is not None:
            result.final = finalize(actor)
    finally:
        pool.shutdown()
        ray.kill(actor, no_restart=True)
    result.worker_restarts, result.redispatched = pool.restarts, pool.redispatched
    return result
