"""pass^k (tau-bench reliability) and pass@k (best-of-k), from repeated trials of each task.

For a task with n counted trials and c successes, the unbiased estimators are
pass^k = C(c, k) / C(n, k) (all k of k fresh trials succeed) and
pass@k = 1 - C(n - c, k) / C(n, k) (at least one does), averaged over the tasks with n >= k.
"""

from __future__ import annotations

from math import comb

import numpy as np
from pydantic import BaseModel

from toolzoo.analysis.data import Episodes


def pass_hat_k(n: int, c: int, k: int) -> float:
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    return comb(c, k) / comb(n, k)


def pass_at_k(n: int, c: int, k: int) -> float:
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


class PassK(BaseModel):
    k: list[int]
    pass_hat: list[float]  # pass^k
    pass_at: list[float]  # pass@k
    tasks: list[int]  # tasks averaged at each k (those with >= k counted trials)


def pass_k_counts(n: np.ndarray, c: np.ndarray) -> PassK:
    """From per-task trial and success counts."""
    n, c = np.asarray(n, dtype=int), np.asarray(c, dtype=int)
    kmax = int(n.max(initial=0))
    ks, hat, at, tasks = [], [], [], []
    for k in range(1, kmax + 1):
        m = n >= k
        ks.append(k)
        tasks.append(int(m.sum()))
        hat.append(float(np.mean([pass_hat_k(a, b, k) for a, b in zip(n[m], c[m])])))
        at.append(float(np.mean([pass_at_k(a, b, k) for a, b in zip(n[m], c[m])])))
    return PassK(k=ks, pass_hat=hat, pass_at=at, tasks=tasks)


def task_counts(eps: Episodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(length, trials, successes) per task over counted episodes."""
    eps = eps.counted()
    tasks, inv = np.unique(eps.task, return_inverse=True)
    inv = inv.reshape(-1)
    n = np.bincount(inv, minlength=tasks.shape[0])
    c = np.bincount(inv, weights=eps.success.astype(float), minlength=tasks.shape[0]).astype(int)
    length = np.zeros(tasks.shape[0], dtype=int)
    length[inv] = eps.length
    return length, n, c


class PassKReport(BaseModel):
    overall: PassK
    by_length: dict[str, PassK]


def pass_k(eps: Episodes) -> PassKReport:
    length, n, c = task_counts(eps)
    by = {str(int(L)): pass_k_counts(n[length == L], c[length == L]) for L in np.unique(length)}
    return PassKReport(overall=pass_k_counts(n, c), by_length=by)
