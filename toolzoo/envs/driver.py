"""The one episode driver: open an episode (sandbox lease, tool subset, infra attribution,
close), run the turn steps, score it.

Every path that plays episodes comes through here: the asyncio :class:`~toolzoo.envs.runner.Runner`
(and with it the Ray rollout actors, which wrap a Runner), the trainer's rollouts
(:mod:`toolzoo.trainer.episodes`) and the gymnasium env (which holds an :func:`open_episode`
across ``reset``/``step`` and drives the same :class:`~toolzoo.envs.episode.EpisodeSteps`).

Sandboxes come from a :class:`Sandboxes` source: cold (one created per episode) or a warm
``toolzoo.sandbox.pool.SandboxPool`` (``sandbox.pool: N`` in the Run format): reset between
episodes, tainted or infra-failed sandboxes discarded, the pool drained at the end; the
process-tier registry and ``toolzoo sandbox gc`` (the reaper) clean up after a crash. The time
spent getting a sandbox is harness time, recorded per episode in ``timing.lease_s``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from toolzoo.clock import EpisodeClock
from toolzoo.core import Outcome, Task, Trajectory
from toolzoo.envs.episode import Limits, run_episode
from toolzoo.sandbox.base import SandboxSpec, create_sandbox


class SandboxUnavailable(Exception):
    """The sandbox never came up (infra)."""


class Sandboxes:
    """Where episodes get their sandboxes: cold per episode, or leased from a warm pool
    (``pool``: warm sandboxes kept per (tier, domain, limits) key; 0: cold).

    A pooled sandbox must be reset to the next episode's seed. The pool resets a returned
    sandbox to its lease's seed, off the hot path; with :meth:`expect` (the seeds of the
    episodes still to start, in order) a returned sandbox is reset to the seed of an episode
    that has not started yet instead, so that episode's lease finds it ready and skips the
    reset round trip."""

    def __init__(self, pool: int = 0, *, run_id: str = "run", max_leases: int = 64):
        self.pool = None
        self._upcoming: list[int] = []  # seeds of episodes not yet started, in start order
        self._prepared: list[int] = []  # seeds idle sandboxes were reset to for them
        if pool > 0:
            from toolzoo.sandbox.pool import PoolConfig, SandboxPool

            self.pool = SandboxPool(PoolConfig(warm=pool, max_leases=max(max_leases, pool)), run_id=run_id)

    def expect(self, seeds: list[int]) -> None:
        self._upcoming = list(seeds)

    async def lease(self, spec: SandboxSpec) -> tuple[Any, Any]:
        """(sandbox, handle for :meth:`give_back`)."""
        if self.pool is None:
            sb = await create_sandbox(spec)
            return sb, None
        for seq in (self._upcoming, self._prepared):
            if spec.seed in seq:
                seq.remove(spec.seed)
        lease = await self.pool.acquire(spec)
        return lease.sandbox, lease

    async def give_back(self, sandbox: Any, handle: Any, *, discard: bool) -> None:
        if handle is None:
            await sandbox.close()
            return
        if not discard:
            pending = list(self._prepared)
            for seed in self._upcoming:  # the next episode no idle sandbox is ready for yet
                if seed in pending:
                    pending.remove(seed)
                    continue
                handle.seed = seed  # the pool resets a returned sandbox to its lease's seed
                self._prepared.append(seed)
                break
        await self.pool.release(handle, discard=discard)  # type: ignore[union-attr]

    async def aclose(self) -> None:
        """Drain the pool: every idle and leased sandbox closed."""
        if self.pool is not None:
            await self.pool.close()


COLD = Sandboxes(0)


@dataclass
class OpenEpisode:
    task: Task  # the task as the agent sees it (a tool subset may give it a new system prompt)
    session: Any
    sandbox: Any
    clock: EpisodeClock
    discard: bool = False  # set when the sandbox must not be reused (infra failure)
    meta: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def open_episode(task: Task, spec: SandboxSpec, *, sandboxes: Sandboxes | None = None,
                       tool_subset: dict[str, Any] | None = None,
                       clock: EpisodeClock | None = None) -> AsyncIterator[OpenEpisode]:
    """Lease a sandbox for ``task`` (and open its tool subset); always given back, discarded
    when the body raised or set ``discard``. Raises :class:`SandboxUnavailable` when no
    sandbox came up."""
    sandboxes = sandboxes or COLD
    clock = clock or EpisodeClock()
    started = time.perf_counter()
    with clock.harness("sandbox"):
        try:
            sandbox, handle = await sandboxes.lease(spec)
        except Exception as exc:  # the sandbox never came up: infrastructure
            raise SandboxUnavailable(f"sandbox: {type(exc).__name__}: {exc}") from exc
    clock.lease_s = time.perf_counter() - started
    subset = None
    episode = OpenEpisode(task=task, session=sandbox.session, sandbox=sandbox, clock=clock)
    try:
        if tool_subset:  # Kimi-style: a sampled tool subset and a generated role prompt
            from toolzoo.envs.tool_subset import open_tool_subset

            subset = await open_tool_subset(task, sandbox.session, tool_subset, spec.episode_id)
            episode.session, episode.task = subset.session, subset.task
        yield episode
    except BaseException:
        episode.discard = True
        raise
    finally:
        if subset is not None:
            await subset.close()
        await sandboxes.give_back(sandbox, handle, discard=episode.discard)


async def play_episode(task: Task, spec: SandboxSpec, agent: Any, user: Any, *, trial: int = 0,
                       limits: Limits | None = None, scorer: Any = None, sandboxes: Sandboxes | None = None,
                       tool_subset: dict[str, Any] | None = None) -> Trajectory:
    """One episode end to end: open, drive, verify, give the sandbox back. Rubric judging
    (``scorer.judge``) is the caller's, after infra retries."""
    clock = EpisodeClock()
    eid = spec.episode_id
    try:
        async with open_episode(task, spec, sandboxes=sandboxes, tool_subset=tool_subset, clock=clock) as ep:
            traj = await run_episode(ep.task, agent, user, ep.session, episode_id=eid, trial=trial,
                                     limits=limits, scorer=scorer, clock=clock)
            if traj.outcome is not None and traj.outcome.retryable:
                ep.discard = True  # a sandbox that failed an episode is not lent again
            return traj
    except SandboxUnavailable as exc:
        return Trajectory(episode_id=eid, task=task, trial=trial, outcome=Outcome.infra(str(exc)),
                          seconds=clock.wall_s(), timing=clock.timing())
