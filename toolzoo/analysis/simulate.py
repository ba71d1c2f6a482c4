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


# -- heterogeneous agents for the any-data horizons (Table) ---------------------------------------

def simulate_table(rng: np.random.Generator, t50: float, families: int = 40, tasks_per_family: int = 3,
                   runs: int = 4, sigma_family: float = 0.0, sigma_task: float = 0.0,
                   span: tuple[float, float] = (0.25, 8.0), agents: dict[str, float] | None = None):
    """Runs of constant-hazard agents whose hazard differs by task: per task
    lambda = ln2/t50 * exp(sigma_family z_f + sigma_task z_t) (lognormal family and task effects),
    success of a run at length L with probability exp(-lambda L). Task lengths are continuous,
    log-uniform over ``span`` x t50, drawn per task (so the design is part of the sampling).
    ``agents``: name -> T50 multiplier; all agents run the same tasks and share their effects
    (default: one agent "sim" with multiplier 1)."""
    from toolzoo.analysis.table import Table

    agents = agents or {"sim": 1.0}
    n_task = families * tasks_per_family
    fam = np.repeat(np.arange(families), tasks_per_family)
    log_lam = (math.log(math.log(2) / t50) + sigma_family * rng.standard_normal(families)[fam]
               + sigma_task * rng.standard_normal(n_task))
    L = t50 * np.exp(rng.uniform(math.log(span[0]), math.log(span[1]), n_task))
    task = np.repeat(np.arange(n_task), runs)
    cols: dict[str, list] = {"agent": [], "task": [], "family": [], "length": [], "score": []}
    for name, mult in agents.items():
        p = np.exp(-np.exp(log_lam) / mult * L)
        y = (rng.random((n_task, runs)) < p[:, None]).astype(float)
        cols["agent"] += [name] * task.size
        cols["task"] += [f"t{i}" for i in task]
        cols["family"] += [f"f{i}" for i in fam[task]]
        cols["length"].append(L[task])
        cols["score"].append(y.reshape(-1))
    return Table.from_arrays(cols["agent"], cols["task"], np.concatenate(cols["length"]),
                             np.concatenate(cols["score"]), family=cols["family"])


def pseudo_true_t50(t50: float, sigma: float, span: tuple[float, float] = (0.25, 8.0)) -> float:
    """The T50 a constant-hazard fit converges to on ``simulate_table`` data with total log-hazard
    s.d. ``sigma`` (sqrt(sigma_family^2 + sigma_task^2)): the root of the expected score,
    E_L[L ((1 - s(L)) / expm1(lam L) - s(L))] = 0, with s(L) = E_z exp(-lam0 e^(sigma z) L),
    by Gauss-Legendre over log L and Gauss-Hermite over z. sigma = 0 gives t50 exactly."""
    from scipy.optimize import brentq

    lam0 = math.log(2) / t50
    u, wu = np.polynomial.legendre.leggauss(80)
    logL = math.log(t50 * span[0]) + (u + 1) / 2 * math.log(span[1] / span[0])
    L = np.exp(logL)
    z, wz = np.polynomial.hermite_e.hermegauss(80)
    wz = wz / wz.sum()
    s = (np.exp(-lam0 * np.exp(sigma * z)[None, :] * L[:, None]) * wz[None, :]).sum(axis=1)

    def score(lam: float) -> float:
        return float((wu * L * ((1 - s) / np.expm1(lam * L) - s)).sum())

    lam = brentq(score, lam0 / 100, lam0 * 10, xtol=1e-15, rtol=1e-13)
    return math.log(2) / lam
