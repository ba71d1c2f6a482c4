"""Hierarchical bootstrap: resample tasks (within each length), then trials within each task.

Task lengths are the experiment's design, so tasks are resampled within their length stratum;
resampling trials inside a drawn task keeps the within-task correlation that makes repeated
trials worth less than fresh tasks. A replicate is a vector of episode multiplicities, which the
fits consume as weights (one ``bincount`` per replicate, no copying of episodes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from toolzoo.analysis.data import Episodes


class Resampler:
    def __init__(self, eps: Episodes):
        """``eps`` must already be the counted episodes; weights index them in order."""
        self.n = len(eps)
        tasks, inv = np.unique(eps.task, return_inverse=True)
        inv = inv.reshape(-1)
        counts = np.bincount(inv, minlength=tasks.shape[0])
        self.n_trials = counts
        width = int(counts.max(initial=1))
        table = np.full((tasks.shape[0], width), -1, dtype=np.int64)
        order = np.argsort(inv, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        for t in range(tasks.shape[0]):
            table[t, : counts[t]] = order[starts[t]: starts[t] + counts[t]]
        self.table = table
        # A task's stratum: its length (all of a task's episodes share it).
        task_len = np.zeros(tasks.shape[0], dtype=np.int64)
        task_len[inv] = eps.length
        self.strata = [np.flatnonzero(task_len == L) for L in np.unique(task_len)]

    def weights(self, rng: np.random.Generator) -> np.ndarray:
        drawn = np.concatenate([s[rng.integers(0, s.shape[0], s.shape[0])] for s in self.strata])
        nt = self.n_trials[drawn]
        k = np.floor(rng.random((drawn.shape[0], self.table.shape[1])) * nt[:, None]).astype(np.int64)
        valid = np.arange(self.table.shape[1])[None, :] < nt[:, None]
        picks = self.table[drawn[:, None], k][valid]
        return np.bincount(picks, minlength=self.n).astype(float)


def bootstrap(eps: Episodes, stat: Callable[[np.ndarray], dict[str, float | None]],
              reps: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Run ``stat(weights)`` on ``reps`` replicates; None results become inf (not identifiable)."""
    rs = Resampler(eps.counted())
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    for _ in range(reps):
        for k, v in stat(rs.weights(rng)).items():
            out.setdefault(k, []).append(math.inf if v is None else float(v))
    return {k: np.asarray(v) for k, v in out.items()}


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval; +inf samples (unbounded T50) sort last, and bounds at inf become None."""
    x = np.sort(samples[~np.isnan(samples)])
    if x.shape[0] == 0:
        return None, None
    a = (1 - level) / 2
    lo, hi = (x[min(x.shape[0] - 1, int(math.floor(q * (x.shape[0] - 1) + 0.5)))]
              for q in (a, 1 - a))
    return (float(lo) if math.isfinite(lo) else None, float(hi) if math.isfinite(hi) else None)
