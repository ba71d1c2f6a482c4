"""A learner that only counts: its version, and the policy versions of what it was fed."""

from __future__ import annotations

import time
from typing import Any

from toolzoo.core import Trajectory


class CountingLearner:
    def __init__(self, step_seconds: float = 0.3):
        self.step_seconds = step_seconds  # long enough that rollouts overlap every step
        self._version = 0
        self.batches: list[dict[str, Any]] = []

    def version(self) -> int:
        return self._version

    def step(self, batch: list[Trajectory]) -> dict[str, float]:
        tags = [t.meta["policy_version"] for t in batch]
        self.batches.append({"version": self._version, "tags": tags, "ids": [t.episode_id for t in batch]})
        time.sleep(self.step_seconds)
        self._version += 1
        return {"loss": float(len(batch)), "mean_tag": sum(tags) / len(tags)}

    def weights(self) -> dict[str, int]:
        return {"v": self._version}

    def history(self) -> list[dict[str, Any]]:
        return self.batches


def load_weights(agents: Any, weights: dict[str, int], version: int) -> None:
    # A worker that got the wrong weights keeps its old version, its rollouts go stale and
    # training stalls: the test's timeout catches it.
    assert weights == {"v": version}, (weights, version)
