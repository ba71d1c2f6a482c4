"""The run driver: every (domain, length, task, trial) episode, concurrently, resumable.

Episode ids are deterministic (``<domain>-s<seed>-L<length>-t<trial>``), so ``--resume``
skips what the store already holds and a killed run loses nothing and repeats nothing.
Infra failures are retried on a fresh sandbox up to ``max_infra_retries`` times and never
count as agent failures.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from toolzoo.core import Outcome, Task, Trajectory
from toolzoo.envs.episode import run_episode
from toolzoo.envs.factories import AgentFactory, UserFactory
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.store import TrajectoryStore
from toolzoo.envs.taskgen import TaskGenerationError, TaskGenerator, task_id
from toolzoo.sandbox.base import SandboxSpec, create_sandbox
from toolzoo.tools.zoo import get_domain


@dataclass(frozen=True)
class Job:
    domain: str
    length: int
    task_seed: int
    trial: int
    suite_index: int | None = None  # a hand-written task from the run's task suite

    @property
    def task_key(self) -> tuple[str, int, int, int | None]:
        return (self.domain, self.task_seed, self.length, self.suite_index)


def plan_jobs(config: RunConfig, suite: list[Task] | None = None) -> list[Job]:
    if suite is not None:
        return [Job(t.domain, t.length, t.seed, trial, i) for i, t in enumerate(suite) for trial in range(config.trials)]
    return [Job(d, L, config.seed + k, t) for d in config.domains for L in config.lengths
            for k in range(config.tasks_per_length) for t in range(config.trials)]


def episode_id(task: Task, trial: int) -> str:
    return f"{task.id}-t{trial}"


class TaskCache:
    """Tasks are generated once and shared by their trials."""

    def __init__(self, config: RunConfig):
        self.config = config
        self._gens: dict[str, TaskGenerator] = {}
        self._tasks: dict[tuple, Task] = {}
        self.suite: list[Task] | None = None
        if config.task_suite:
            from toolzoo.envs.task_suite import load_task_suite

            self.suite = load_task_suite(config.task_suite)

    def get(self, job: Job) -> Task:
        if job.suite_index is not None:
            return self.suite[job.suite_index]
        task = self._tasks.get(job.task_key)
        if task is None:
            gen = self._gens.get(job.domain)
            if gen is None:
                gen = self._gens[job.domain] = TaskGenerator(get_domain(job.domain), self.config.generator)
            task = self._tasks[job.task_key] = gen.generate(job.task_seed, job.length)
        return task


def summarize(trajectories: list[Trajectory]) -> dict[str, Any]:
    by_length: dict[str, dict[str, Any]] = {}
    counts = {"infra": 0, "user_sim": 0, "judge": 0}
    for traj in trajectories:
        outcome = traj.outcome or Outcome(success=False, failure="infra")
        if outcome.failure in counts:
            counts[outcome.failure] += 1
            continue
        row = by_length.setdefault(str(traj.task.length), {"episodes": 0, "successes": 0})
        row["episodes"] += 1
        row["successes"] += int(outcome.success)
    for row in by_length.values():
        row["rate"] = row["successes"] / row["episodes"] if row["episodes"] else None
    by_length = dict(sorted(by_length.items(), key=lambda kv: int(kv[0])))
    return {"episodes": len(trajectories), "by_length": by_length, "infra_errors": counts["infra"],
            "user_sim_errors": counts["user_sim"], "judge_errors": counts["judge"]}


class Runner:
    def __init__(self, config: RunConfig, *, resume: bool = False, overwrite: bool = False,
                 on_episode: Callable[[Trajectory], None] | None = None, run_id: str | None = None,
                 base_dir: str | Path | None = None):
        self.config = config
        self.out = Path(config.output)
        self.resume = resume
        self.overwrite = overwrite
        self.on_episode = on_episode
        self.run_id = run_id or config.run
        self.store = TrajectoryStore(self.out / "trajectories.jsonl")
        self.tasks = TaskCache(config)
        self.base_dir = base_dir  # where relative rubric paths start (the config's folder)
        self.simulators = None  # LLM world models for `simulate: llm` tools, one per episode
        if config.simulator:
            from toolzoo.tools.simulated import SimulatorFactory

            self.simulators = SimulatorFactory(config.simulator)

    def build_judges(self) -> Any:
        """The run's judges beyond the verifiable one (rubrics), built once; a bad rubric file
        or a missing judge endpoint fails the run here, before any episode."""
        from toolzoo.rubrics.apply import build_judges

        return build_judges(self.config.judges, self.out, None, combine=self.config.judge_combine,
                            weights=self.config.judge_weights, domains=self.config.domains, base_dir=self.base_dir)

    def prepare(self) -> list[Job]:
        if self.store.path.exists() and not (self.resume or self.overwrite):
            raise FileExistsError(f"{self.store.path} exists: pass --resume to continue it or --overwrite to start over")
        if self.overwrite and not self.resume and self.store.path.exists():
            self.store.path.unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False))
        done = self.store.repair()
        return [j for j in plan_jobs(self.config, self.tasks.suite) if self._episode_id(j) not in done]

    def _episode_id(self, job: Job) -> str:
        """The id the episode will have, known without generating its task."""
        if job.suite_index is not None:
            return f"{self.tasks.suite[job.suite_index].id}-t{job.trial}"
        tid = task_id(get_domain(job.domain).name, job.task_seed, job.length, self.config.generator.chain)
        return f"{tid}-t{job.trial}"

    async def run_job(self, job: Job, agents: AgentFactory, users: UserFactory) -> Trajectory:
        try:
            task = self.tasks.get(job)
        except TaskGenerationError as exc:
            task = Task(id=self._episode_id(job).rsplit("-t", 1)[0], domain=job.domain, seed=job.task_seed,
                        length=job.length, subtasks=[])
            return Trajectory(episode_id=self._episode_id(job), task=task, trial=job.trial,
                              outcome=Outcome(success=False, failure="infra", reason=f"task generation: {exc}"))
        eid = episode_id(task, job.trial)
        traj: Trajectory | None = None
        for attempt in range(self.config.max_infra_retries + 1):
            traj = await self._attempt(task, job, eid, agents, users)
            traj.attempts = attempt + 1
            if traj.outcome is None or traj.outcome.failure != "infra":
                break
        assert traj is not None
        return traj

    async def _attempt(self, task: Task, job: Job, eid: str, agents: AgentFactory, users: UserFactory) -> Trajectory:
        sb = self.config.sandbox
        # The simulator goes into this episode's spec only (the config is dumped to YAML).
        options = {**sb.options, **({"simulator": self.simulators.make(eid)} if self.simulators else {})}
        spec = SandboxSpec(backend=sb.backend, domain=job.domain, seed=task.seed, run_id=self.run_id, episode_id=eid,
                           limits=sb.limits, transport=sb.transport, image=sb.image,
                           allow_unisolated=sb.allow_unisolated, options=options)
        try:
            sandbox = await create_sandbox(spec)
        except Exception as exc:  # the sandbox never came up: infrastructure
            return Trajectory(episode_id=eid, task=task, trial=job.trial,
                              outcome=Outcome(success=False, failure="infra",
                                              reason=f"sandbox: {type(exc).__name__}: {exc}"))
        subset = None
        try:
            session, episode_task = sandbox.session, task
            if self.config.tool_subset:  # Kimi-style: a sampled tool subset and a generated role prompt
                from toolzoo.envs.tool_subset import open_tool_subset

                subset = await open_tool_subset(task, sandbox.session, self.config.tool_subset, eid)
                session, episode_task = subset.session, subset.task
            return await run_episode(episode_task, agents.make(eid), users.make(), session, episode_id=eid,
                                     trial=job.trial, limits=self.config.limits)
        finally:
            if subset is not None:
                await subset.close()
            await sandbox.close()

    async def run(self, progress: bool = True) -> dict[str, Any]:
        jobs = self.prepare()
        judges = self.build_judges()
        agents, users = AgentFactory(self.config.agent), UserFactory(self.config.user)
        total = len(plan_jobs(self.config, self.tasks.suite))
        sem = asyncio.Semaphore(self.config.concurrency)
        bar = RunProgress(total, total - len(jobs), enabled=progress)

        async def one(job: Job) -> None:
            async with sem:
                traj = await self.run_job(job, agents, users)
                if traj.outcome is not None and traj.outcome.failure not in ("infra", "user_sim"):
                    await judges.apply(traj.task, traj)
            self.store.append(traj)
            if self.on_episode:
                self.on_episode(traj)
            bar.record(traj)

        started = time.perf_counter()
        try:
            with bar:
                await asyncio.gather(*(one(j) for j in jobs))
        finally:
            self.store.close()
            await agents.aclose()
            await users.aclose()
            await judges.aclose()
            if self.simulators is not None:
                await self.simulators.aclose()
        from toolzoo.rubrics.apply import summary_blocks

        trajectories = list(self.store)
        summary = summarize(trajectories)
        summary.update(summary_blocks(trajectories))
        summary["seconds"] = round(time.perf_counter() - started, 3)
        summary["run"] = self.config.run
        _merge_json(self.out / "summary.json", summary)
        return summary


def _merge_json(path: Path, blocks: dict[str, Any]) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(blocks)
    path.write_text(json.dumps(data, indent=2, sort_keys=False))


class RunProgress:
    """The rich progress bar of a run: episodes done, success so far, infra errors."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.enabled = enabled
        self.total = total
        self._progress = None
        self._task = None
        self._done = done
        self.stats = {"done": done, "ok": 0, "judged": 0, "infra": 0}

    def record(self, traj: Trajectory) -> None:
        stats = self.stats
        stats["done"] += 1
        failure = traj.outcome.failure if traj.outcome else "infra"
        if failure in ("infra", "user_sim", "judge"):
            stats["infra"] += failure == "infra"
        else:
            stats["judged"] += 1
            stats["ok"] += int(bool(traj.outcome and traj.outcome.success))
        self.update(stats)

    def __enter__(self) -> RunProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]episodes"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[info]}"), TimeElapsedColumn())
            self._progress.__enter__()
            self._task = self._progress.add_task("run", total=self.total, completed=self._done, info="")
        return self

    def update(self, stats: dict[str, int]) -> None:
        if self._progress is not None:
            rate = stats["ok"] / stats["judged"] if stats["judged"] else 0.0
            self._progress.update(self._task, completed=stats["done"],
                                  info=f"success {rate:.1%}  infra errors {stats['infra']}")

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
