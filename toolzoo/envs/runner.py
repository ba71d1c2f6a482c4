"""The run driver: every (domain, length, task, trial) episode, concurrently, resumable.

Episode ids are deterministic (``<domain>-s<seed>-L<length>-t<trial>``), so ``--resume``
skips what the store already holds and a killed run loses nothing and repeats nothing.
``--resume`` refuses a run whose config or domain files changed (``fingerprint.json`` names
what changed); ``--retry-infra`` re-runs stored ``infra`` and ``harness`` failures.
Infra failures are retried on a fresh sandbox up to ``max_infra_retries`` times and never
count as agent failures. An unexpected exception in one episode is stored as a ``harness``
failure with its traceback and the run goes on, until ``max_harness_failures`` in a row stop it.
Episodes are played by the one driver (:mod:`toolzoo.envs.driver`) and scored by the one
:class:`~toolzoo.envs.scorer.Scorer`; rates count only what ``core.counts_for_rate`` admits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from toolzoo.agents.formats import parse_error_count
from toolzoo.core import FailureKind, Outcome, Task, Trajectory, counts_for_rate, failure_kind
from toolzoo.envs.driver import Sandboxes, play_episode
from toolzoo.envs.factories import AgentFactory, UserFactory
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.scorer import Scorer
from toolzoo.envs.store import TrajectoryStore
from toolzoo.envs.taskgen import TaskGenerationError, TaskGenerator, task_id
from toolzoo.sandbox.base import SandboxSpec
from toolzoo.tools.zoo import get_domain, resolve_path


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
    """Success by length over the episodes ``counts_for_rate`` admits, and counts of the rest."""
    by_length: dict[str, dict[str, Any]] = {}
    counts = {k: 0 for k in FailureKind if k != FailureKind.AGENT}
    for traj in trajectories:
        if not counts_for_rate(traj.outcome):
            counts[failure_kind(traj.outcome)] += 1  # type: ignore[index]
            continue
        row = by_length.setdefault(str(traj.task.length), {"episodes": 0, "successes": 0})
        row["episodes"] += 1
        row["successes"] += int(traj.outcome.success)  # type: ignore[union-attr]
    for row in by_length.values():
        row["rate"] = row["successes"] / row["episodes"] if row["episodes"] else None
    by_length = dict(sorted(by_length.items(), key=lambda kv: int(kv[0])))
    return {"episodes": len(trajectories), "by_length": by_length, "infra_errors": counts[FailureKind.INFRA],
            "user_sim_errors": counts[FailureKind.USER_SIM], "judge_errors": counts[FailureKind.JUDGE],
            "harness_errors": counts[FailureKind.HARNESS],
            # call-like text the agent wrote that did not parse (each was answered with a tool error)
            "parse_errors": sum(parse_error_count(t.messages) for t in trajectories)}


class HarnessFailures(RuntimeError):
    """Too many episodes in a row failed inside toolzoo itself: the run stops."""


class RunChanged(RuntimeError):
    """``--resume`` of a run whose config or domain files are no longer what it started with."""


# Keys that do not change what an episode does: resuming with another value is fine.
_NOT_FINGERPRINTED = ("run", "output", "concurrency", "report", "max_infra_retries", "max_harness_failures")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def fingerprint(config: RunConfig) -> dict[str, Any]:
    """What a run's episodes depend on: the config (minus ``_NOT_FINGERPRINTED``) and the bytes
    of every domain file and task suite."""
    dump = {k: v for k, v in config.model_dump(mode="json").items() if k not in _NOT_FINGERPRINTED}
    files: dict[str, str] = {}
    for d in config.domains:
        try:
            files[f"domain {d}"] = _digest(resolve_path(d).read_bytes())
        except OSError as exc:
            files[f"domain {d}"] = f"unreadable: {exc}"
    if config.task_suite:
        files[f"task_suite {config.task_suite}"] = _digest(Path(config.task_suite).read_bytes())
    return {"config": _digest(json.dumps(dump, sort_keys=True).encode()), "config_values": dump, "files": files}


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two fingerprints (empty: the same run)."""
    changes = []
    for name in sorted(set(old.get("files", {})) | set(new.get("files", {}))):
        a, b = old.get("files", {}).get(name), new.get("files", {}).get(name)
        if a != b:
            changes.append(f"{name}: fingerprint {a or 'absent'} -> {b or 'absent'}")
    if old.get("config") != new.get("config"):
        va, vb = old.get("config_values", {}), new.get("config_values", {})
        keys = sorted(k for k in set(va) | set(vb) if va.get(k) != vb.get(k))
        changes.append(f"config: fingerprint {old.get('config')} -> {new.get('config')}"
                       + (f" (changed: {', '.join(keys)})" if keys else ""))
    return changes


class Runner:
    def __init__(self, config: RunConfig, *, resume: bool = False, overwrite: bool = False,
                 on_episode: Callable[[Trajectory], None] | None = None, run_id: str | None = None,
                 base_dir: str | Path | None = None, retry_infra: bool = False):
        self.config = config
        self.out = Path(config.output)
        self.resume = resume
        self.overwrite = overwrite
        self.retry_infra = retry_infra  # re-run stored infra and harness failures (with resume)
        self.on_episode = on_episode
        self.run_id = run_id or config.run
        self.store = TrajectoryStore(self.out / "trajectories.jsonl")
        self.tasks = TaskCache(config)
        self.base_dir = base_dir  # where relative rubric paths start (the config's folder)
        self.simulators = None  # LLM world models for `simulate: llm` tools, one per episode
        if config.simulator:
            from toolzoo.tools.simulated import SimulatorFactory

            self.simulators = SimulatorFactory(config.simulator)
        # A pooled sandbox keeps the server (and its simulator) it was made with: with a
        # per-episode simulator every episode needs its own sandbox.
        pool = config.sandbox.pool if self.simulators is None else 0
        self.sandboxes = Sandboxes(pool, run_id=self.run_id, max_leases=config.concurrency)
        self.harness_in_a_row = 0

    def build_scorer(self) -> Scorer:
        """The run's scorer (verifiable + rubrics + combination), built once; a bad rubric file
        or a missing judge endpoint fails the run here, before any episode."""
        return Scorer.build(self.config.judges, self.out, combine=self.config.judge_combine,
                            weights=self.config.judge_weights, domains=self.config.domains, base_dir=self.base_dir)

    def build_judges(self) -> Any:
        """The rubric JudgeSet alone (as ``toolzoo.rubrics.apply.build_judges``)."""
        from toolzoo.rubrics.apply import build_judges

        return build_judges(self.config.judges, self.out, None, combine=self.config.judge_combine,
                            weights=self.config.judge_weights, domains=self.config.domains, base_dir=self.base_dir)

    def prepare(self) -> list[Job]:
        if self.store.path.exists() and not (self.resume or self.overwrite):
            raise FileExistsError(f"{self.store.path} exists: pass --resume to continue it or --overwrite to start over")
        if self.overwrite and not self.resume and self.store.path.exists():
            self.store.path.unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_fingerprint()
        (self.out / "config.yaml").write_text(yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False))
        done = self.store.repair()
        if self.retry_infra:
            done -= self.store.drop(lambda t: t.outcome is None or t.outcome.retryable)
        return [j for j in plan_jobs(self.config, self.tasks.suite) if self._episode_id(j) not in done]

    def _check_fingerprint(self) -> None:
        path = self.out / "fingerprint.json"
        now = fingerprint(self.config)
        if self.resume and path.exists() and self.store.path.exists():
            changes = fingerprint_changes(json.loads(path.read_text()), now)
            if changes:
                raise RunChanged(f"cannot --resume {self.out}: the run changed since it started: " + "; ".join(changes)
                                 + ". Resume with the original config and domains, or start over with --overwrite.")
        path.write_text(json.dumps(now, indent=1, sort_keys=True))

    def _episode_id(self, job: Job) -> str:
        """The id the episode will have, known without generating its task."""
        if job.suite_index is not None:
            return f"{self.tasks.suite[job.suite_index].id}-t{job.trial}"
        tid = task_id(get_domain(job.domain).name, job.task_seed, job.length, self.config.generator.chain)
        return f"{tid}-t{job.trial}"

    def _placeholder_task(self, job: Job) -> Task:
        eid = self._episode_id(job)
        try:
            return self.tasks.get(job)
        except Exception:  # noqa: BLE001 - the task itself is what failed
            return Task(id=eid.rsplit("-t", 1)[0], domain=job.domain, seed=job.task_seed, length=job.length, subtasks=[])

    def harness_failure(self, job: Job, exc: BaseException) -> Trajectory:
        """An unexpected exception in one episode, as data: a ``harness`` failure with its traceback."""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return Trajectory(episode_id=self._episode_id(job), task=self._placeholder_task(job), trial=job.trial,
                          outcome=Outcome.harness(f"{type(exc).__name__}: {exc}"), meta={"traceback": tb})

    def note_harness(self, traj: Trajectory) -> None:
        """Count harness failures in a row; raise :class:`HarnessFailures` past the limit."""
        if traj.outcome is not None and traj.outcome.failure == FailureKind.HARNESS:
            self.harness_in_a_row += 1
            if self.harness_in_a_row >= self.config.max_harness_failures:
                raise HarnessFailures(
                    f"{self.harness_in_a_row} episodes in a row failed inside toolzoo (harness failures); the run "
                    f"stopped. The last: {traj.outcome.reason}\n{traj.meta.get('traceback', '')}"
                    f"Stored episodes stand: fix the cause, then `toolzoo run --resume --retry-infra`.")
        else:
            self.harness_in_a_row = 0

    async def run_job(self, job: Job, agents: AgentFactory, users: UserFactory) -> Trajectory:
        try:
            task = self.tasks.get(job)
        except TaskGenerationError as exc:
            task = Task(id=self._episode_id(job).rsplit("-t", 1)[0], domain=job.domain, seed=job.task_seed,
                        length=job.length, subtasks=[])
            return Trajectory(episode_id=self._episode_id(job), task=task, trial=job.trial,
                              outcome=Outcome.infra(f"task generation: {exc}"))
        eid = episode_id(task, job.trial)
        traj: Trajectory | None = None
        for attempt in range(self.config.max_infra_retries + 1):
            traj = await self._attempt(task, job, eid, agents, users)
            traj.attempts = attempt + 1
            if traj.outcome is None or traj.outcome.failure != FailureKind.INFRA:
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
        return await play_episode(task, spec, agents.make(eid), users.make(), trial=job.trial,
                                  limits=self.config.limits, sandboxes=self.sandboxes,
                                  tool_subset=self.config.tool_subset)

    async def play(self, job: Job, agents: AgentFactory, users: UserFactory, scorer: Scorer) -> Trajectory:
        """One job to a stored-ready trajectory: played, judged, or a harness failure."""
        try:
            return await scorer.judge(await self.run_job(job, agents, users))
        except Exception as exc:  # noqa: BLE001 - a bug in one episode is data, not the run's end
            return self.harness_failure(job, exc)

    async def run(self, progress: bool = True) -> dict[str, Any]:
        jobs = self.prepare()
        scorer = self.build_scorer()
        self.sandboxes.expect([j.task_seed for j in jobs])  # warm sandboxes are reset ahead for these
        agents, users = AgentFactory(self.config.agent), UserFactory(self.config.user)
        total = len(plan_jobs(self.config, self.tasks.suite))
        sem = asyncio.Semaphore(self.config.concurrency)
        bar = RunProgress(total, total - len(jobs), enabled=progress)

        async def one(job: Job) -> None:
            async with sem:
                traj = await self.play(job, agents, users, scorer)
            self.store.append(traj)
            if self.on_episode:
                self.on_episode(traj)
            bar.record(traj)
            self.note_harness(traj)

        started = time.perf_counter()
        try:
            with bar:
                async with asyncio.TaskGroup() as group:
                    for j in jobs:
                        group.create_task(one(j))
        except* HarnessFailures as eg:
            raise eg.exceptions[0] from None
        finally:
            self.store.close()
            await self.sandboxes.aclose()
            await agents.aclose()
            await users.aclose()
            await scorer.aclose()
            if self.simulators is not None:
                await self.simulators.aclose()
        from toolzoo.rubrics.apply import summary_blocks

        trajectories = list(self.store)
        summary = summarize(trajectories)
        summary.update(summary_blocks(trajectories))
        summary["timing"] = timing_summary(trajectories)
        summary["seconds"] = round(time.perf_counter() - started, 3)
        summary["run"] = self.config.run
        _merge_json(self.out / "summary.json", summary)
        return summary


def timing_summary(trajectories: list[Trajectory]) -> dict[str, Any]:
    """Median and total agent / harness / sandbox-lease seconds per episode."""
    import statistics

    out: dict[str, Any] = {}
    for name in ("agent_s", "harness_s", "lease_s"):
        values = [getattr(t.timing, name) for t in trajectories]
        out[name] = {"median": statistics.median(values) if values else None, "total": round(sum(values), 6)}
    return out


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
        if counts_for_rate(traj.outcome):
            stats["judged"] += 1
            stats["ok"] += int(bool(traj.outcome and traj.outcome.success))
        else:
            stats["infra"] += failure_kind(traj.outcome) in (FailureKind.INFRA, FailureKind.HARNESS)
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
