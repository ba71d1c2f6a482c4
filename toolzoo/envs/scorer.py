"""The one scorer: verifiable checks, then rubric judges, then their combination into a reward.

``toolzoo run`` (asyncio and Ray), ``toolzoo train`` and the gymnasium env all score with a
:class:`Scorer`, so the reward a learner optimises is the reward the run reports. Two stages,
because on Ray they may run in different processes:

* :meth:`Scorer.verify` — the verifiable check against the episode's final state (sets
  ``scores["verifiable"]`` and the outcome; needs ``traj.final_state``).
* :meth:`Scorer.judge` — the run's rubric judges and the combination (``judge_combine``,
  ``judge_weights``) into ``outcome.reward``; a judge that cannot decide makes the episode a
  ``judge`` failure, which no rate counts.

Episodes without a verdict (``infra``, ``user_sim``, ``harness``) pass through untouched.
Outcomes are frozen: each stage sets a new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolzoo.core import Outcome, Trajectory
from toolzoo.rubrics.verifiable import judge_verifiable


def has_rubrics(judges: list[Any]) -> bool:
    """Judges beyond the verifiable one (which every episode runs)."""
    return any(j != "verifiable" for j in judges)


class Scorer:
    """``judges``: a built ``JudgeSet`` (``toolzoo.rubrics.apply.build_judges``) or None for
    the verifiable check alone (its reward is then the verifiable reward)."""

    def __init__(self, judges: Any = None):
        self.judges = judges

    @classmethod
    def build(cls, judges: list[Any], run_dir: str | Path, *, combine: str = "product",
              weights: dict[str, float] | None = None, domains: list[str] | None = None,
              base_dir: str | Path | None = None) -> Scorer:
        """From a ``judges:`` list (Run or Train config). Rubric files load here, so a bad one
        fails before any episode."""
        if not has_rubrics(judges):
            return cls(None)
        from toolzoo.rubrics.apply import build_judges

        return cls(build_judges(judges, run_dir, None, combine=combine, weights=weights, domains=domains,
                                base_dir=base_dir))

    @property
    def rubric_names(self) -> list[str]:
        return list(self.judges.names) if self.judges is not None else []

    def verify(self, traj: Trajectory) -> Trajectory:
        """The verifiable verdict on ``traj.final_state`` (left as is when there is none)."""
        if traj.final_state is None:
            return traj
        # final_hash is set with final_state (EpisodeSteps.final_state): no second hashing
        score, outcome = judge_verifiable(traj.task, traj.messages, traj.final_state, traj.checkpoints,
                                          final_hash=traj.final_hash or None)
        traj.scores["verifiable"] = score
        traj.outcome = outcome
        return traj

    async def judge(self, traj: Trajectory) -> Trajectory:
        """Rubrics and the combined reward (a no-op without rubric judges)."""
        if self.judges is None or traj.outcome is None or not traj.outcome.judged:
            return traj
        from toolzoo.rubrics.base import JudgeError

        try:
            result = await self.judges.apply(traj.task, traj)
        except JudgeError as exc:  # a judge set that lets its judges' errors out: still the judge's failure
            traj.outcome = Outcome.judge_failed(f"judge: {exc}", traj.outcome)
            return traj
        return result if isinstance(result, Trajectory) else traj

    async def score(self, traj: Trajectory) -> Trajectory:
        return await self.judge(self.verify(traj))

    async def aclose(self) -> None:
        if self.judges is not None:
            await self.judges.aclose()


VERIFIABLE = Scorer(None)  # the verifiable check alone: stateless, shared
