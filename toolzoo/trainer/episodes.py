"""Episodes for training: tasks, inline sandboxes, the scripted user, any agent.

The same driver as ``toolzoo run`` (:func:`toolzoo.envs.driver.play_episode`: same steps, same
tool errors, same infra attribution) and the same :class:`~toolzoo.envs.scorer.Scorer`, so
the reward a learner optimises is the reward a run with the same judges reports (rubric
rewards included). No store: the trainer wants trajectories in memory, many per step. One
agent object may serve every episode (the HF policy batches their turns) or ``make_agent``
builds one per episode (the oracle keeps per-task state).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from toolzoo.core import Task, ToolSpecView, Trajectory
from toolzoo.envs.driver import Sandboxes, play_episode
from toolzoo.envs.episode import Limits
from toolzoo.envs.run_config import SandboxConfig
from toolzoo.envs.runner import episode_id
from toolzoo.envs.scorer import VERIFIABLE, Scorer
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.envs.taskgen import GeneratorOptions, TaskGenerationError, TaskGenerator
from toolzoo.sandbox.base import SandboxSpec
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.state import seed_state
from toolzoo.tools.zoo import get_domain


class Tasks:
    """Tasks by (domain, seed, length), generated once. Seeds that cannot make a task of a
    length are skipped by ``draw``."""

    def __init__(self, options: GeneratorOptions | None = None):
        self.options = options or GeneratorOptions()
        self._gens: dict[str, TaskGenerator] = {}
        self._cache: dict[tuple[str, int, int], Task | None] = {}
        self.sources: dict[str, str] = {}  # domain name -> what was configured (name or YAML path)

    def source(self, task: Task) -> str:
        return self.sources.get(task.domain, task.domain)

    def get(self, domain: str, seed: int, length: int) -> Task | None:
        key = (domain, seed, length)
        if key not in self._cache:
            gen = self._gens.get(domain)
            if gen is None:
                dom = get_domain(domain)
                gen = self._gens[domain] = TaskGenerator(dom, self.options)
                self.sources[dom.name] = domain
            try:
                self._cache[key] = gen.generate(seed, length)
            except TaskGenerationError:
                self._cache[key] = None
        return self._cache[key]

    def draw(self, domains: Sequence[str], lengths: Sequence[int], n: int, seed0: int) -> list[Task]:
        """``n`` tasks cycling over domains x lengths, seeds counting up from ``seed0``."""
        out: list[Task] = []
        combos = [(d, L) for d in domains for L in lengths]
        seed, misses = seed0, 0
        while len(out) < n:
            d, L = combos[len(out) % len(combos)]
            task = self.get(d, seed, L)
            seed += 1
            if task is None:
                misses += 1
                if misses > 50 * n + 100:
                    raise TaskGenerationError(f"cannot generate tasks of length {L} for {d}")
                continue
            out.append(task)
        return out


@lru_cache(maxsize=64)
def _tool_views(domain: str) -> tuple[ToolSpecView, ...]:
    dom = get_domain(domain)
    return tuple(DomainRuntime(dom, seed_state(dom.spec, 0)).tool_views())


def domain_tools(domain: str) -> list[ToolSpecView]:
    """The tools an agent sees in ``domain`` (as ``session.list_tools()`` lists them)."""
    return list(_tool_views(domain))


async def run_one(task: Task, agent: Any, *, trial: int = 0, user_mode: str = "per_turn",
                  limits: Limits | None = None, run_id: str = "train", domain: str | None = None,
                  scorer: Scorer | None = None, sandboxes: Sandboxes | None = None,
                  sandbox: SandboxConfig | None = None) -> Trajectory:
    """``domain``: where the task's domain lives (a YAML path) when not a built-in name;
    ``scorer``: the judges (default: the verifiable check alone); ``sandboxes``: a warm pool;
    ``sandbox``: the tier and its settings (the Run format's section; default inline)."""
    eid = episode_id(task, trial)
    sb = sandbox or SandboxConfig()
    spec = SandboxSpec(backend=sb.backend, domain=domain or task.domain, seed=task.seed, run_id=run_id,
                       episode_id=eid, limits=sb.limits, transport=sb.transport, image=sb.image,
                       allow_unisolated=sb.allow_unisolated, options=sb.options)
    scorer = scorer or VERIFIABLE
    traj = await play_episode(task, spec, agent, ScriptedUser(mode=user_mode), trial=trial, limits=limits,
                              sandboxes=sandboxes)
    return await scorer.judge(traj)


async def run_many(tasks: Sequence[Task], make_agent: Callable[[], Any], *, trials: int = 1,
                   user_mode: str = "per_turn", limits: Limits | None = None,
                   concurrency: int = 64, sources: dict[str, str] | None = None,
                   scorer: Scorer | None = None, sandboxes: Sandboxes | None = None,
                   sandbox: SandboxConfig | None = None,
                   episode_agent: Callable[[str], Any] | None = None) -> list[Trajectory]:
    """Every task ``trials`` times, concurrently; results in order (task-major, so the trials
    of one task are adjacent: a GRPO group). ``scorer``: as ``toolzoo run``'s (rubrics and
    their combination reach ``outcome.reward``). ``sandbox.pool > 0`` (and no ``sandboxes``
    given): the episodes lease from a warm pool made for this call and drained at its end.
    ``episode_agent``: makes each episode's agent from its episode id (instead of
    ``make_agent()``), as a run's agent kind does."""
    sem = asyncio.Semaphore(concurrency)
    own = sandboxes is None and sandbox is not None and sandbox.pool > 0
    if own:
        sandboxes = Sandboxes(sandbox.pool, run_id="train", max_leases=concurrency)
        sandboxes.expect([t.seed for t in tasks for _ in range(trials)])

    async def one(task: Task, trial: int) -> Trajectory:
        async with sem:
            agent = make_agent() if episode_agent is None else episode_agent(episode_id(task, trial))
            return await run_one(task, agent, trial=trial, user_mode=user_mode, limits=limits,
                                 domain=(sources or {}).get(task.domain), scorer=scorer, sandboxes=sandboxes,
                                 sandbox=sandbox)

    try:
        return list(await asyncio.gather(*(one(t, k) for t in tasks for k in range(trials))))
    finally:
        if own:
            await sandboxes.aclose()


def oracle_episodes(tasks: Sequence[Task], user_mode: str = "per_turn",
                    sources: dict[str, str] | None = None, sandbox: SandboxConfig | None = None) -> list[Trajectory]:
    from toolzoo.agents.scripted import OracleAgent

    return asyncio.run(run_many(tasks, OracleAgent, user_mode=user_mode, sources=sources, sandbox=sandbox))
