"""Playing many adversarial episodes and checking the verdicts (shared by the answer, code and
endpoint suites)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Callable

from toolzoo.core import FailureKind, Task, Trajectory
from toolzoo.envs.episode import run_episode
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.sandbox import SandboxSpec, create_sandbox


async def play(task: Task, agent: Any, mode: str = "per_turn", backend: str = "inline",
               episode_id: str = "adv") -> Trajectory:
    # code_workspace on the inline tier runs its impl tools on this host: allowed for tests
    spec = SandboxSpec(backend=backend, domain=task.domain, seed=task.seed, episode_id=episode_id,
                       allow_unisolated=True)
    sandbox = await create_sandbox(spec)
    try:
        return await run_episode(task, agent, ScriptedUser(mode), sandbox.session, episode_id=episode_id)
    finally:
        await sandbox.close()


def play_all(jobs: list[tuple[Task, Callable[[], Any], str]], backend: str = "inline",
             concurrency: int = 8) -> list[tuple[str, Trajectory]]:
    """Run (task, agent factory, mode) jobs, ``concurrency`` at a time, in one event loop."""
    async def main() -> list[tuple[str, Trajectory]]:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, task: Task, make: Callable[[], Any], mode: str) -> tuple[str, Trajectory]:
            async with gate:
                agent = make()
                try:
                    traj = await play(task, agent, mode, backend, episode_id=f"adv{i}")
                finally:
                    close = getattr(agent, "aclose", None)
                    if close is not None:
                        await close()
                return f"{task.id}/{getattr(agent, 'label', type(agent).__name__)}/{mode}", traj

        return list(await asyncio.gather(*(one(i, *job) for i, job in enumerate(jobs))))
    return asyncio.run(main())


def assert_all_agent_failures(results: list[tuple[str, Trajectory]]) -> Counter:
    """No false success, and every failure the agent's (judged), never infra or a harness bug."""
    kinds = Counter(str(t.outcome.failure) if t.outcome else "missing" for _, t in results)
    wins = [(label, t.messages[-1].content if t.messages else "") for label, t in results if t.outcome.success]
    assert not wins, f"{len(wins)} false successes, e.g. {wins[:3]}"
    wrong = [(label, t.outcome.failure, t.outcome.reason[:200]) for label, t in results
             if t.outcome.failure != FailureKind.AGENT]
    assert not wrong, f"{len(wrong)} episodes not attributed to the agent, e.g. {wrong[:3]}"
    return kinds
