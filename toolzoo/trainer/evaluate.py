"""Evaluation during training: greedy episodes on held-out tasks at the eval lengths, then
success by length and the half-life fit of ``toolzoo.analysis`` on the in-memory episodes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolzoo.agents.formats import parse_error_count
from toolzoo.core import Task, Trajectory
from toolzoo.core import FailureKind, failure_kind
from toolzoo.envs.episode import Limits
from toolzoo.trainer.episodes import Tasks, run_many
from toolzoo.trainer.privileged import PrivilegedAgent, PrivilegedKind


def eval_tasks(tasks: Tasks, domains: Sequence[str], lengths: Sequence[int], per_length: int,
               seed0: int) -> list[Task]:
    out = []
    for d in domains:
        for L in lengths:
            out += tasks.draw([d], [L], per_length, seed0)
    return out


def summarize(trajs: Sequence[Trajectory]) -> dict[str, Any]:
    """``{"by_length": {L: {n, successes, rate}}, "success": overall, "t50": ..., "t50_ci": ...}``."""
    from toolzoo.analysis import Episodes, analyze, success_by_length

    eps = Episodes.from_trajectories(list(trajs))
    rows = success_by_length(eps)
    out: dict[str, Any] = {
        "by_length": {str(r.length): {"n": r.n, "successes": r.successes, "rate": r.rate} for r in rows},
        "success": sum(r.successes for r in rows) / max(1, sum(r.n for r in rows)),
        "infra": int(sum(1 for t in trajs if failure_kind(t.outcome) == FailureKind.INFRA)),
        "parse_errors": sum(parse_error_count(t.messages) for t in trajs),  # call-like text that did not parse
    }
    try:  # the fit is undefined on degenerate data (no successes at all, say): report that
        hl = analyze(eps, reps=0).half_life()
        out["t50"] = hl["t50"] if hl["t50"] is None or math.isfinite(hl["t50"]) else None
        out["t50_ci"] = hl["ci"]
        out["model"] = hl["model"]
    except Exception as exc:  # noqa: BLE001 (an analysis problem must not stop training)
        out["t50"], out["analysis_error"] = None, f"{type(exc).__name__}: {exc}"
    return out


def evaluate(agent, tasks: Sequence[Task], *, user_mode: str = "per_turn", limits: Limits | None = None,
             save_to: Path | None = None, sources: dict[str, str] | None = None,
             privileged: PrivilegedKind | None = None, sandbox: Any = None) -> dict[str, Any]:
    """Run ``tasks`` once each with ``agent`` (shared across episodes). With ``save_to``, also
    write a run folder (trajectories.jsonl + the ``toolzoo report`` files). With ``privileged``,
    the policy sees each task's PI of that kind (the π-Distill/OPSD teacher view)."""
    make = (lambda: PrivilegedAgent(agent, privileged)) if privileged else (lambda: agent)  # PI is per task
    trajs = asyncio.run(run_many(tasks, make, user_mode=user_mode, limits=limits, sources=sources, sandbox=sandbox))
    out = summarize(trajs)
    if save_to is not None:
        save_to.mkdir(parents=True, exist_ok=True)
        with (save_to / "trajectories.jsonl").open("w", encoding="utf-8") as f:
            for t in trajs:
                f.write(t.model_dump_json() + "\n")
        try:
            from toolzoo.analysis.report import write_report

            write_report([save_to])
        except Exception as exc:  # noqa: BLE001
            out["report_error"] = f"{type(exc).__name__}: {exc}"
    return out
