"""A judge that fails on 30% of episodes at random (seeded by the episode id, so the asyncio
and the Ray paths see the same failures), loaded by Ray judge workers as a judges factory."""

from __future__ import annotations

import random
from typing import Any

from toolzoo.core import Score, Task, Trajectory
from toolzoo.rubrics.base import JudgeError

FAIL_RATE = 0.3


def fails(episode_id: str) -> bool:
    return random.Random(f"flaky:{episode_id}").random() < FAIL_RATE


class _Flaky:
    names = ["flaky"]

    async def apply(self, task: Task, traj: Trajectory) -> Trajectory:
        if fails(traj.episode_id):
            raise JudgeError("flaky judge endpoint down")
        traj.scores["flaky"] = Score(value=1.0)
        return traj

    async def aclose(self) -> None:
        return None


def build_judges(judges_config: list[Any], run_dir: str = "") -> _Flaky:
    return _Flaky()
