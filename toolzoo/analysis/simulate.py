"""Simulated agents of known hazard, outcomes drawn directly (no episodes): for calibration
tests and ``bench/halflife.py``.

The first failure time is T = ceil(X) with X continuous Weibull, so P(T > t) = S(t) exactly at
integer t; kappa = 1 gives the geometric law with per-subtask failure p = 1 - exp(-lambda).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from toolzoo.analysis.data import Episodes


def true_t50(p: float) -> float:
    """Half-life of an agent failing each subtask independently with probability p."""
    return math.log(2) / -math.log1p(-p)


def design(t50: float, episodes: int = 2000, lo: float = 0.5, hi: float = 8.0) -> np.ndarray:
    """Lengths 2^a .. 2^b spanning ~``lo`` x T50 to ~``hi`` x T50, episodes split evenly.

    The survival estimator's information grows with the number of failure events, so lengths
    well past T50 (which fail almost surely, after ~T50 subtasks of exposure) are the
    informative ones; lengths far below T50 mostly add censored successes. This design is
    within ~5% of the Cramer-Rao-optimal spread for the tests' 2,000 episodes.
    """
    a = max(0, math.floor(math.log2(lo * t50)))
    b = max(a + 1, math.ceil(math.log2(hi * t50)))
    return np.resize(2 ** np.arange(a, b + 1), episodes)


def first_failure(rng: np.random.Generator, n: int, t50: float, kappa: float = 1.0) -> np.ndarray:
    u = rng.random(n)
    x = t50 * (-np.log1p(-u) / math.log(2)) ** (1.0 / kappa)
    return np.maximum(1, np.ceil(x)).astype(np.int64)


def simulate(lengths: Sequence[int] | np.ndarray, t50: float, kappa: float = 1.0,
             rng: np.random.Generator | None = None, trials: int = 1,
             endpoint_only: bool = False) -> Episodes:
    """One episode per entry of ``lengths`` (times ``trials``, each entry a task)."""
    rng = rng or np.random.default_rng()
    lengths = np.repeat(np.asarray(lengths, dtype=np.int64), trials)
    t = first_failure(rng, lengths.shape[0], t50, kappa)
    success = t > lengths
    ff = np.where(success | endpoint_only, -1, t - 1)
    task = np.repeat(np.arange(lengths.shape[0] // trials), trials)
    trial = np.tile(np.arange(trials), lengths.shape[0] // trials)
    return Episodes.from_arrays(lengths, success, ff, task=task, trial=trial)


def fisher_lambda(lengths: Sequence[int] | np.ndarray, lam: float, endpoint: bool = False) -> float:
    """Expected Fisher information about lambda from one episode at each of ``lengths``.

    Survival data: outcome "first failure at t" (t = 1..L, prob e^{-lam(t-1)}(1-e^{-lam})) or
    "survived L" (prob e^{-lam L}). Endpoint data: success (e^{-lam L}) or failure.
    """
    q = math.exp(-lam)
    total = 0.0
    for L, count in zip(*np.unique(np.asarray(lengths), return_counts=True)):
        L = int(L)
        if endpoint:
            total += count * L * L * q**L / (1 - q**L)
            continue
        t = np.arange(1, L + 1)
        p = q ** (t - 1) * (1 - q)
        score = -(t - 1) + q / (1 - q)
        total += count * (float((p * score**2).sum()) + q**L * L * L)
    return total


def crb_t50(lengths: Sequence[int] | np.ndarray, t50: float, endpoint: bool = False) -> float:
    """Cramer-Rao bound on Var(T50_hat): (dT50/dlambda)^2 / I(lambda), T50 = ln2/lambda."""
    lam = math.log(2) / t50
    return (math.log(2) / lam**2) ** 2 / fisher_lambda(lengths, lam, endpoint)
