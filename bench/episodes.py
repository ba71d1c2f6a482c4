"""Episode throughput and memory.

1. Episodes per second with the oracle agent and the scripted user, inline tier, length 4, in
   one process, against the same number of bare tool calls made through the same kind of
   session without the episode machinery (the ratio is the loop's overhead). Task generation
   is timed separately (tasks are generated once and reused by trials).
2. Memory per open episode with 100, 1,000 and 10,000 episodes open at once (each holds its
   sandbox, tool server state, agent, user and conversation mid-episode).

    python bench/episodes.py [--episodes 400] [--concurrency 64] [--open 100,1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time

import psutil

from toolzoo.agents.scripted import OracleAgent
from toolzoo.envs.episode import run_episode
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.envs.taskgen import TaskGenerator
from toolzoo.sandbox import SandboxSpec, create_sandbox
from toolzoo.tools.zoo import get_domain

DOMAIN = "retail_orders"


async def one_episode(task):
    sandbox = await create_sandbox(SandboxSpec(domain=DOMAIN, seed=task.seed))
    try:
        return await run_episode(task, OracleAgent(), ScriptedUser(), sandbox.session, episode_id=task.id)
    finally:
        await sandbox.close()


async def throughput(tasks, concurrency: int) -> tuple[float, int]:
    sem = asyncio.Semaphore(concurrency)

    async def guarded(task):
        async with sem:
            return await one_episode(task)

    t0 = time.perf_counter()
    trajs = await asyncio.gather(*(guarded(t) for t in tasks))
    elapsed = time.perf_counter() - t0
    assert all(t.outcome.success for t in trajs), "the oracle must solve every task"
    return len(tasks) / elapsed, sum(len(t.calls) for t in trajs)


async def bare_calls(tasks, n_calls: int) -> float:
    """The same reference tool calls, straight through one session per task, no episode."""
    steps = [(t, s) for t in tasks for sub in t.subtasks for s in sub.solution][:n_calls]
    t0 = time.perf_counter()
    current, session = None, None
    for task, step in steps:
        if task is not current:
            sandbox = await create_sandbox(SandboxSpec(domain=DOMAIN, seed=task.seed))
            current, session = task, sandbox.session
        await session.call_tool(step.tool, step.args)
    return time.perf_counter() - t0


class Parked:
    """An oracle that stops after its first tool call until released: keeps episodes open."""

    def __init__(self, release: asyncio.Event, parked: list):
        self.inner, self.release, self.parked, self.calls = OracleAgent(), release, parked, 0

    async def start(self, task):
        await self.inner.start(task)

    async def act(self, messages, tools):
        if self.calls == 1:
            self.parked.append(1)
            await self.release.wait()
        self.calls += 1
        return await self.inner.act(messages, tools)


async def memory_per_episode(tasks, n: int) -> float:
    gc.collect()
    proc = psutil.Process(os.getpid())
    base = proc.memory_info().rss
    release, parked = asyncio.Event(), []

    async def open_one(task):
        sandbox = await create_sandbox(SandboxSpec(domain=DOMAIN, seed=task.seed))
        try:
            return await run_episode(task, Parked(release, parked), ScriptedUser(), sandbox.session, episode_id="m")
        finally:
            await sandbox.close()

    runs = [asyncio.create_task(open_one(tasks[i % len(tasks)])) for i in range(n)]
    while len(parked) < n:
        await asyncio.sleep(0.05)
    gc.collect()
    held = proc.memory_info().rss - base
    release.set()
    await asyncio.gather(*runs)
    return held / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--open", default="100,1000,10000")
    args = parser.parse_args()
    gen = TaskGenerator(get_domain(DOMAIN))
    t0 = time.perf_counter()
    tasks = [gen.generate(seed, 4) for seed in range(args.episodes)]
    print(f"task generation (length 4): {len(tasks) / (time.perf_counter() - t0):.0f} tasks/s")
    rate, n_calls = asyncio.run(throughput(tasks, args.concurrency))
    bare = asyncio.run(bare_calls(tasks, n_calls))
    episode_time = args.episodes / rate
    print(f"episodes: {rate:.0f} episodes/s (length 4, {n_calls} tool calls); "
          f"bare calls: {n_calls / bare:.0f} calls/s")
    print(f"ratio episode time / bare-call time for the same calls = {episode_time / bare:.2f} "
          f"(goal: >= 100 episodes/s)")
    for n in [int(x) for x in args.open.split(",") if x]:
        per = asyncio.run(memory_per_episode(tasks, n))
        print(f"open episodes {n:>6}: {per / 1024:.1f} KiB each, {per * n / 2**30:.2f} GiB total "
              f"(goal: 10,000 under 4 GiB)")


if __name__ == "__main__":
    main()
