"""Hierarchical bootstrap over family -> task -> run, shared by every agent in the data.

A replicate draws task families with replacement, then (within each drawn copy of a family) as
many of its tasks with replacement, then (within each drawn copy of a task, separately for each
agent) as many of that agent's runs with replacement. Task identity is the unit, never task
length: tasks of one length are not exchangeable when they differ in difficulty. Families and
tasks are drawn once per replicate for all agents, so agents that share tasks get *paired*
replicates, and a ratio or difference of two agents' T50 is computed replicate by replicate.

A replicate is a vector of row multiplicities (a row drawn twice counts twice, as in METR's
bootstrap), which the fits consume as weights. Drawing k copies of a group of size n and then n
members of each copy is one multinomial of k*n trials over the n members, so each level is a
handful of vectorised ``multinomial`` calls (one per distinct group size), for all replicates.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from toolzoo.analysis.data import Episodes


def _codes(values: np.ndarray) -> np.ndarray:
    return np.unique(np.asarray(values), return_inverse=True)[1].reshape(-1)


class HierarchicalResampler:
    """Row multiplicities for ``family -> task -> run`` resampling.

    ``family``, ``task`` and ``cell`` label each row; ``cell`` is the unit runs are resampled in
    (an agent's runs of one task: pass ``(agent, task)`` codes). A task must lie in one family.
    """

    def __init__(self, family: np.ndarray, task: np.ndarray, cell: np.ndarray | None = None,
                 levels: tuple[str, ...] = ("family",)):
        bad = set(levels) - {"family", "task", "run"}
        if bad or not levels:
            raise ValueError(f"bootstrap levels must be some of family, task, run; got {levels}")
        self.levels = tuple(levels)
        fam, tsk = _codes(family), _codes(task)
        cel = tsk if cell is None else _codes(cell)
        self.row_cell = cel
        self.n = int(tsk.shape[0])
        n_task = int(tsk.max(initial=-1)) + 1
        task_family = np.full(n_task, -1)
        task_family[tsk] = fam
        clash = np.flatnonzero(task_family[tsk] != fam)
        if clash.size:
            raise ValueError(f"task {task[clash[0]]!r} appears in more than one family")
        self.n_family, self.n_task = int(fam.max(initial=-1)) + 1, n_task
        self.task_family = task_family
        # Level 2 groups: the tasks of each family, bucketed by family size.
        self.fam_groups = self._buckets(task_family, self.n_family)
        # Level 3 groups: the rows of each cell, and the task each cell belongs to.
        n_cell = int(cel.max(initial=-1)) + 1
        self.cell_task = np.zeros(n_cell, np.int64)
        self.cell_task[cel] = tsk
        self.cell_groups = self._buckets(cel, n_cell)

    @staticmethod
    def _buckets(owner: np.ndarray, n_owner: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(owners of size k, (n_owners_k x k) member table)] for each size k."""
        order = np.argsort(owner, kind="stable")
        sizes = np.bincount(owner, minlength=n_owner)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        out = []
        for k in np.unique(sizes[sizes > 0]):
            owners = np.flatnonzero(sizes == k)
            members = order[starts[owners][:, None] + np.arange(k)[None, :]]
            out.append((owners, members))
        return out

    @staticmethod
    def _spread(rng: np.random.Generator, copies: np.ndarray, groups, size: int,
                resample: bool = True) -> np.ndarray:
        """Given (B x owners) copy counts, draw members: returns (B x size) member counts
        (``resample=False``: every member of a drawn owner comes along once per copy)."""
        B = copies.shape[0]
        out = np.zeros((B, size), np.int64)
        for owners, members in groups:
            k = members.shape[1]
            trials = copies[:, owners] * k
            if not resample:
                draws = np.repeat(copies[:, owners][:, :, None], k, axis=2)
            elif k == 1:
                draws = trials[:, :, None]
            else:
                draws = rng.multinomial(trials, np.full(k, 1.0 / k))
            out[:, members.reshape(-1)] = draws.reshape(B, -1)
        return out

    def draw(self, rng: np.random.Generator, reps: int) -> np.ndarray:
        """(reps x rows) integer multiplicities."""
        if self.n == 0:
            return np.zeros((reps, 0), np.int64)
        F = self.n_family
        if "family" in self.levels:
            picks = rng.integers(0, F, (reps, F)) + F * np.arange(reps)[:, None]
            fam_copies = np.bincount(picks.reshape(-1), minlength=reps * F).reshape(reps, F)
        else:
            fam_copies = np.ones((reps, F), np.int64)
        task_copies = self._spread(rng, fam_copies, self.fam_groups, self.n_task, "task" in self.levels)
        cell_copies = task_copies[:, self.cell_task]
        if "run" not in self.levels:
            return cell_copies[:, self.row_cell]
        return self._spread(rng, cell_copies, self.cell_groups, self.n)


class Resampler:
    """Replicate weights for one run's counted episodes (family -> task -> trial).

    Episodes without a family (simulations) resample tasks directly: each task is its own family.
    """

    def __init__(self, eps: Episodes):
        from toolzoo.analysis.data import task_ids

        tasks = task_ids(eps)
        family = eps.family if eps.family is not None else tasks
        self.rs = HierarchicalResampler(np.asarray(family).astype(str), tasks)
        self.n = len(eps)

    def weights(self, rng: np.random.Generator) -> np.ndarray:
        return self.rs.draw(rng, 1)[0].astype(float)


def bootstrap(eps: Episodes, stat: Callable[[np.ndarray], dict[str, float | None]],
              reps: int = 400, seed: int = 0, replicates: np.ndarray | None = None
              ) -> dict[str, np.ndarray]:
    """Run ``stat(weights)`` on each replicate; None results become inf (not identifiable).

    ``replicates`` (reps x counted episodes) supplies the multiplicities, so that several runs
    can share (pair) their draws; otherwise they are drawn here from ``seed``.
    """
    if replicates is None:
        rs = Resampler(eps.counted())
        replicates = rs.rs.draw(np.random.default_rng(seed), reps)
    out: dict[str, list[float]] = {}
    for w in replicates:
        for k, v in stat(w.astype(float)).items():
            out.setdefault(k, []).append(math.inf if v is None else float(v))
    return {k: np.asarray(v) for k, v in out.items()}


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval; +inf samples (unbounded T50) sort last, and bounds at inf become None.

    The bounds are the order statistics k = alpha/2 (B + 1) and B + 1 - k (1-based), rounded:
    with B = 199 or 999 and a 95% level these are exact order statistics, for which the coverage
    error from a finite number of replicates is O(1/B) (Hall 1986, Ann. Statist. 14:1453).
    """
    x = np.sort(samples[~np.isnan(samples)])
    B = x.shape[0]
    if B == 0:
        return None, None
    k = max(1, min(B, int(math.floor((1 - level) / 2 * (B + 1) + 0.5))))
    lo, hi = x[k - 1], x[B - k]
    return (float(lo) if math.isfinite(lo) else None, float(hi) if math.isfinite(hi) else None)


def small_sample_level(level: float, clusters: int | None) -> float:
    """The nominal level to ask of a cluster bootstrap with ``clusters`` clusters.

    The bootstrap variance of a mean of G iid clusters is (G - 1)/G of the true one, and a
    standardised estimate with G clusters is referred to Student's t with G - 1 degrees of freedom
    (the usual small-sample rule for cluster-robust inference; Cameron & Miller 2015, J. Human
    Resources 50:317, section VI). Together: z_eff = t_{G-1}((1 + level)/2) sqrt(G/(G-1)), and the
    interval is read at level 2 Phi(z_eff) - 1 (0.9564 for 95% at G = 60; -> level as G grows).
    Measured: without it the 95% interval covered 93.5% at 60 families (calibration tests).
    """
    from scipy.stats import norm, t

    if clusters is None or clusters < 3:
        return level
    z = float(t.ppf((1 + level) / 2, clusters - 1)) * math.sqrt(clusters / (clusters - 1))
    return float(2 * norm.cdf(z) - 1)


def bca_ci(samples: np.ndarray, point: float | None, jackknife: np.ndarray | None,
           level: float = 0.95, clusters: int | None = None) -> tuple[float | None, float | None]:
    """Bias-corrected and accelerated percentile interval (Efron 1987; Davison & Hinkley 1997,
    5.3.2), computed on log values (BCa is transformation-respecting, so this only keeps the
    jackknife's skewness estimate well behaved).

    z0 = Phi^-1(share of replicates below the estimate) corrects median bias; the acceleration
    a = sum d^3 / (6 (sum d^2)^1.5), d_i = mean(jack) - jack_i, from leave-one-cluster-out
    estimates, corrects for the standard error changing with the parameter. ``clusters``: apply
    ``small_sample_level``. Falls back to the percentile interval (at the same level) when the
    estimate is not finite or no replicate lies on one side of it.
    """
    from scipy.stats import norm

    level = small_sample_level(level, clusters)
    x = samples[~np.isnan(samples)]
    if x.size == 0 or point is None or not (math.isfinite(point) and point > 0):
        return percentile_ci(samples, level)
    below = (np.sum(x < point) + 0.5 * np.sum(x == point)) / x.size
    if below <= 0 or below >= 1:
        return percentile_ci(samples, level)
    z0 = float(norm.ppf(below))
    acc = 0.0
    if jackknife is not None and jackknife.size > 2 and np.all(np.isfinite(jackknife)) and np.all(jackknife > 0):
        lj = np.log(jackknife)
        d = lj.mean() - lj
        den = 6.0 * float((d * d).sum()) ** 1.5
        acc = float((d ** 3).sum()) / den if den > 0 else 0.0
    za = norm.ppf([(1 - level) / 2, 1 - (1 - level) / 2])
    adj = norm.cdf(z0 + (z0 + za) / (1 - acc * (z0 + za)))
    xs = np.sort(x)
    B = xs.size
    out = []
    for q in adj:
        k = min(B, max(1, int(math.floor(q * (B + 1) + 0.5))))
        v = xs[k - 1]
        out.append(float(v) if math.isfinite(v) else None)
    return out[0], out[1]
