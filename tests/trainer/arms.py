"""Shared by the π-Distill comparisons (the must-show test and bench/pi_distill_vs_sft.py):
train one arm from a config dict, read its held-out successes, compare two arms."""

from __future__ import annotations

from pathlib import Path

from scipy.stats import fisher_exact


def train_arm(base: dict, out: Path, name: str, **kw) -> dict:
    """``toolzoo train`` in-process with ``base`` updated by ``kw``, output in ``out/name``."""
    from toolzoo.trainer.config import TrainConfig
    from toolzoo.trainer.loop import train

    cfg = TrainConfig.model_validate({**base, "train": name, "output": str(out / name), **kw})
    return train(cfg, progress=False)


def successes(summary: dict, view: str = "student", length: int = 1) -> int:
    """Greedy successes on the held-out tasks: without PI, or (``teacher``) with it in context."""
    ev = summary["eval"] if view == "student" else summary["eval"]["teacher"]
    return ev["by_length"][str(length)]["successes"]


def p_greater(a: int, b: int, n: int) -> float:
    """One-sided Fisher exact p that a/n is a higher success rate than b/n."""
    return fisher_exact([[a, n - a], [b, n - b]], alternative="greater")[1]
