"""Ray actors that run and judge episodes, and the driver-side pool that keeps them busy.

A :class:`RolloutWorker` is an async actor holding the asyncio runner machinery of one
process (agent and user factories, a task cache, its own sandboxes) and runs up to
``max_concurrency`` episodes at once. A :class:`JudgeWorker` applies the run's judges to a
finished trajectory. Both return JSON text: small, version-proof, cheap through Ray.

:class:`ResilientPool` dispatches keyed calls to a set of such actors with a bounded window
per actor. When an actor dies (``RayActorError``: killed, OOM, node lost) the calls it had in
flight go back to the front of the queue, a replacement actor is started, and the results it
had already delivered stand. Nothing is lost; duplicates cannot be stored because the driver
is the only writer and dedupes by episode id.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from toolzoo.core import Outcome, Trajectory
from toolzoo.envs.factories import AgentFactory, UserFactory
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.runner import Job, Runner

# (agents, weights, version) -> None: installs a learner's weights in a worker's agent factory.
WeightLoader = Callable[[AgentFactory, Any, int], None]


class _WorkerRunner(Runner):
    """The Runner's per-episode machinery (task cache, sandbox creation, infra retries) without
    its store: on Ray the driver is the only writer."""

    def __init__(self, config: RunConfig, run_id: str, base_dir: str | None = None):
        kw = {"base_dir": base_dir} if base_dir is not None else {}
        super().__init__(config, run_id=run_id, **kw)  # its store is never opened here


class RolloutWorkerImpl:
    """Runs episodes concurrently; tags each with the policy version it started under."""

    def __init__(self, config_json: str, run_id: str, name: str, load_weights: WeightLoader | None = None,
                 base_dir: str | None = None, judge: bool = False):
        self.config = RunConfig.model_validate_json(config_json)
        self.name = name
        self.runner = _WorkerRunner(self.config, run_id, base_dir)
        self.agents = AgentFactory(self.config.agent)
        self.users = UserFactory(self.config.user)
        self.load_weights = load_weights
        self.version = 0
        # judge: score here with the run's scorer (the trainer's workers: the reward must be the
        # combined one, rubrics included); else the driver's judge pool does (``toolzoo run --ray``)
        self.scorer = self.runner.build_scorer() if judge else None

    async def run_job(self, job: Job) -> str:
        version = self.version  # an agent is made at episode start: later weights apply to later episodes
        if self.scorer is not None:
            traj = await self.runner.play(job, self.agents, self.users, self.scorer)  # played and judged
        else:
            try:
                traj = await self.runner.run_job(job, self.agents, self.users)
            except Exception as exc:  # noqa: BLE001 - as the Runner: a bug in one episode is data
                traj = self.runner.harness_failure(job, exc)
        traj.meta["policy_version"] = version
        traj.meta["worker"] = self.name
        return traj.model_dump_json()

    async def set_policy(self, version: int, weights: Any = None) -> int:
        if self.load_weights is not None:
            self.load_weights(self.agents, weights, version)
        self.version = version
        return version

    async def ping(self) -> str:
        return self.name

    async def aclose(self) -> None:
        await self.runner.sandboxes.aclose()  # drain this worker's warm sandboxes
        if self.scorer is not None:
            await self.scorer.aclose()
        await self.agents.aclose()
        await self.users.aclose()


BUILD_JUDGES = "toolzoo.rubrics.apply:build_judges"  # -> object with ``async apply(task, traj)``


def judges_needed(config: RunConfig) -> bool:
    """Judges beyond the verifiable one (which runs inside every episode)."""
    return any(j != "verifiable" for j in config.judges)


def judges_available() -> bool:
    return importlib.util.find_spec("toolzoo.rubrics.apply") is not None


class JudgeWorkerImpl:
    """Applies the run's judges (``toolzoo.rubrics.apply.build_judges``) to trajectories.
    LLM judges wait on endpoints, so one actor judges many trajectories at once."""

    def __init__(self, config_json: str, run_dir: str, factory: str = BUILD_JUDGES, base_dir: str | None = None):
        self.config = RunConfig.model_validate_json(config_json)
        from toolzoo.envs.scorer import Scorer

        runner = _WorkerRunner(self.config, "judge", base_dir)
        if factory == BUILD_JUDGES:
            self.scorer = runner.build_scorer()  # exactly the asyncio Runner's scorer
        else:
            module, fn = factory.split(":")
            self.scorer = Scorer(getattr(importlib.import_module(module), fn)(self.config.judges, run_dir))

    async def judge(self, traj_json: str) -> str:
        from toolzoo.rubrics.base import JudgeError

        traj = Trajectory.model_validate_json(traj_json)
        if traj.outcome is None or not traj.outcome.judged:
            return traj_json  # as the Runner: nothing to judge
        try:
            result = await self.scorer.judge(traj)
            if isinstance(result, Trajectory):
                traj = result
        except JudgeError as exc:  # the judge failed, not the agent
            traj.outcome = Outcome.judge_failed(f"judge: {exc}", traj.outcome)
        except Exception as exc:  # noqa: BLE001 - a bug in judging one episode is data
            import traceback

            traj.outcome = Outcome.harness(f"judging: {type(exc).__name__}: {exc}")
            traj.meta["traceback"] = traceback.format_exc()
        return traj.model_dump_json()

    async def ping(self) -> str:
        return "judge"


RolloutWorker = ray.remote(RolloutWorkerImpl)
JudgeWorker = ray.remote(JudgeWorkerImpl)


@dataclass
class Done:
    key: Hashable
    value: Any = None  # the method's return value
    error: str | None = None  # set when the call could not be completed (workers kept dying)


@dataclass(eq=False)  # identity: a slot is one place in the pool
class _Slot:
    index: int
    generation: int
    handle: Any
    inflight: dict[Any, tuple[Hashable, tuple]] = field(default_factory=dict)  # ObjectRef -> (key, args)


class ResilientPool:
    """Keyed calls of ``method`` over ``size`` actors made by ``make_actor(index, generation)``."""

    def __init__(self, make_actor: Callable[[int, int], Any], method: str, *, size: int, window: int,
                 max_deaths_per_key: int = 3):
        self.make_actor = make_actor
        self.method = method
        self.window = window
        self.max_deaths_per_key = max_deaths_per_key
        self.slots = [_Slot(i, 0, make_actor(i, 0)) for i in range(size)]
        self.queue: deque[tuple[Hashable, tuple]] = deque()
        self.deaths: dict[Hashable, int] = {}
        self.restarts = 0
        self.redispatched = 0
        self.on_new_actor: Callable[[Any], Any] | None = None  # e.g. bring a replacement up to date
        self._owner: dict[Any, _Slot] = {}

    @property
    def handles(self) -> list[Any]:
        return [s.handle for s in self.slots]

    def submit(self, key: Hashable, *args: Any) -> None:
        self.queue.append((key, args))

    def pending(self) -> int:
        return len(self.queue) + len(self._owner)

    def refs(self) -> list[Any]:
        return list(self._owner)

    def fill(self) -> None:
        while self.queue:
            slot = min(self.slots, key=lambda s: len(s.inflight))
            if len(slot.inflight) >= self.window:
                return
            key, args = self.queue.popleft()
            ref = getattr(slot.handle, self.method).remote(*args)
            slot.inflight[ref] = (key, args)
            self._owner[ref] = slot

    def collect(self, ready: list[Any]) -> list[Done]:
        """Results of the ready refs this pool owns; dead actors are replaced and their
        unfinished calls requeued."""
        out: list[Done] = []
        dead: list[_Slot] = []
        for ref in ready:
            slot = self._owner.get(ref)
            if slot is None or slot in dead:
                continue
            try:
                value = ray.get(ref)
            except RayActorError:
                dead.append(slot)
                continue
            key, _ = slot.inflight.pop(ref)
            del self._owner[ref]
            out.append(Done(key, value))
        for slot in dead:
            out.extend(self._replace(slot))
        return out

    def _replace(self, slot: _Slot) -> list[Done]:
        out: list[Done] = []
        ray.kill(slot.handle, no_restart=True)  # a merely unreachable actor must not deliver later
        for ref, (key, args) in slot.inflight.items():
            del self._owner[ref]
            try:
                out.append(Done(key, ray.get(ref, timeout=0)))  # finished before it died: keep it
                continue
            except (RayActorError, GetTimeoutError):
                pass
            self.deaths[key] = self.deaths.get(key, 0) + 1
            if self.deaths[key] >= self.max_deaths_per_key:
                out.append(Done(key, error=f"its worker died {self.deaths[key]} times"))
            else:
                self.queue.appendleft((key, args))
                self.redispatched += 1
        slot.inflight = {}
        slot.generation += 1
        slot.handle = self.make_actor(slot.index, slot.generation)
        if self.on_new_actor is not None:
            self.on_new_actor(slot.handle)
        self.restarts += 1
        return out

    def shutdown(self) -> None:
        for slot in self.slots:
            ray.kill(slot.handle, no_restart=True)
        self.queue.clear()
        self._owner.clear()


def wait_any(refs: list[Any], timeout: float | None = None) -> list[Any]:
    """Every ref ready now, after waiting for at least one (or ``timeout``)."""
    if not refs:
        return []
    ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
    if ready and rest:
        more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
        ready += more
    return ready


def rollout_pool(config: RunConfig, run_id: str, *, size: int, worker_cpus: float = 1.0,
                 load_weights: WeightLoader | None = None, name: str = "rollout",
                 base_dir: str | None = None, judge: bool = False) -> ResilientPool:
    """``judge``: workers score their episodes with the config's judges (else a judge pool does)."""
    config_json = config.model_dump_json()

    def make(index: int, generation: int) -> Any:
        return RolloutWorker.options(max_concurrency=config.concurrency, num_cpus=worker_cpus, max_restarts=0,
                                     max_task_retries=0).remote(config_json, run_id, f"{name}-{index}.{generation}",
                                                                load_weights, base_dir, judge)

    return ResilientPool(make, "run_job", size=size, window=config.concurrency)


def judge_pool(config: RunConfig, run_dir: str, *, size: int = 1, factory: str = BUILD_JUDGES,
               base_dir: str | None = None) -> ResilientPool:
    config_json = config.model_dump_json()

    def make(index: int, generation: int) -> Any:
        # No CPU reservation: judges wait on endpoints, and rollout workers hold the cores.
        return JudgeWorker.options(max_concurrency=config.concurrency, num_cpus=0, max_restarts=0,
                                   max_task_retries=0).remote(config_json, run_dir, factory, base_dir)

    return ResilientPool(make, "judge", size=size, window=config.concurrency)
