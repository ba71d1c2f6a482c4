"""Episode outcomes as arrays: loading a run, success by length, interval-censored survival data.

Every fit in this package works on :class:`IntervalData`: each counted episode says "the first
failure happened at a discrete length T with ``left < T <= right``". One representation covers
all the data we get:

* success of a length-L task: survived L subtasks, right-censored -> ``(L, inf)``;
* agent failure with ``first_failed = i``: subtasks 0..i-1 survived, event at t = i+1 -> ``(i, i+1)``;
* agent failure without ``first_failed`` (endpoint-only judge): event somewhere in ``(0, L]``.

The likelihood contribution of a row is ``S(left) - S(right)`` for any survival model ``S``, so the
same code fits the endpoint binomial (all failures coarsened to ``(0, L)``) and the per-subtask
survival model. Rows are grouped by ``(left, right)`` with weights, so likelihoods cost O(#rows),
and a bootstrap replicate is just a new weight vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from scipy.stats import beta

from toolzoo import core
from toolzoo.core import Trajectory

# Failures that are not the agent's: excluded from every rate, reported beside them.
EXCLUDED_KINDS = ("infra", "user_sim", "judge", "harness", "unscored")
FAILURE_KINDS = ("agent", "infra", "user_sim", "judge", "harness", "unscored")


def counts_for_rate(kind: str | None) -> bool:
    """THE counting rule for the analysis, on a failure kind (None: no failure recorded).

    Delegates to ``toolzoo.core.counts_for_rate`` so that reports, ``toolzoo analyze`` and the
    runner can never disagree: only successes and ``agent`` failures count; ``infra``,
    ``user_sim``, ``judge``, ``harness`` and unscored episodes are excluded whatever their
    ``success`` flag says.
    """
    if kind == "unscored":
        return False
    pred = getattr(core, "counts_for_rate", None)
    if pred is None:  # an older core: the same rule, spelled out
        return kind is None or kind == "agent"
    return bool(pred(core.Outcome(success=kind is None, failure=kind)))


def counted_kinds(kinds: np.ndarray) -> np.ndarray:
    """``counts_for_rate`` elementwise over an object array of kinds (one call per distinct kind)."""
    kinds = np.asarray(kinds, dtype=object)
    out = np.zeros(kinds.shape[0], bool)
    for k in set(kinds.tolist()):
        out[kinds == k] = counts_for_rate(k)
    return out


@dataclass(frozen=True)
class Episodes:
    """One row per episode. ``first_failed`` and ``completed`` use -1 / 0 for "unknown"."""

    task: np.ndarray  # int codes into task_names
    task_names: tuple[str, ...]
    domain: np.ndarray  # object (str)
    length: np.ndarray  # int
    trial: np.ndarray  # int
    success: np.ndarray  # bool
    failure: np.ndarray  # object: None | "agent" | "infra" | "user_sim" | "judge" | "harness" | "unscored"
    first_failed: np.ndarray  # int, -1 when unknown / no failure
    completed: np.ndarray  # int, subtasks completed in order before the first failure
    family: np.ndarray | None = None  # object (str): task family (template chain); None = each task its own

    def __len__(self) -> int:
        return int(self.length.shape[0])

    @classmethod
    def from_arrays(
        cls,
        length: Sequence[int] | np.ndarray,
        success: Sequence[bool] | np.ndarray,
        first_failed: Sequence[int | None] | np.ndarray | None = None,
        *,
        task: Sequence[str | int] | np.ndarray | None = None,
        trial: Sequence[int] | np.ndarray | None = None,
        failure: Sequence[str | None] | None = None,
        completed: Sequence[int] | np.ndarray | None = None,
        domain: Sequence[str] | None = None,
        family: Sequence[str] | None = None,
    ) -> Episodes:
        """Build from in-memory arrays (simulations). Defaults: every episode is its own task,
        trial 0, failures are the agent's, ``first_failed`` unknown (endpoint-only)."""
        length = np.asarray(length, dtype=np.int64)
        n = length.shape[0]
        success = np.asarray(success, dtype=bool)
        if first_failed is None:
            ff = np.full(n, -1, dtype=np.int64)
        else:
            ff = np.array([-1 if v is None else int(v) for v in first_failed], dtype=np.int64) \
                if not isinstance(first_failed, np.ndarray) else first_failed.astype(np.int64)
        if task is None:
            codes, names = np.arange(n, dtype=np.int64), ()  # () = codes are the names
        elif isinstance(task, np.ndarray) and task.dtype.kind in "iu":
            codes, names = task.astype(np.int64), ()
        else:
            uniq, codes = np.unique(np.asarray([str(t) for t in task]), return_inverse=True)
            names = tuple(str(u) for u in uniq)
        if failure is None:
            fail = np.where(success, None, "agent").astype(object)
        else:
            fail = np.array(list(failure), dtype=object)
        return cls._clean(
            task=np.asarray(codes, dtype=np.int64),
            task_names=names,
            domain=np.array(list(domain) if domain is not None else [""] * n, dtype=object),
            length=length,
            trial=np.zeros(n, np.int64) if trial is None else np.asarray(trial, dtype=np.int64),
            success=success,
            failure=fail,
            first_failed=ff,
            completed=np.zeros(n, np.int64) if completed is None else np.asarray(completed, np.int64),
            family=None if family is None else np.array([str(f) for f in family], dtype=object),
        )

    @classmethod
    def _clean(cls, **kw) -> Episodes:
        # Make the fields mutually consistent: a success has no failure kind and no failed
        # index; a failed index can't exceed the task; an unknown failure kind is the agent's.
        success, length = kw["success"], kw["length"]
        if np.any(length < 1):
            raise ValueError("task lengths must be >= 1")
        fail = kw["failure"].copy()
        # A success has no failure kind, except an excluded kind (a judge that could not decide
        # keeps the verifiable verdict in ``success``): that one stays excluded from rates.
        fail[success & ((fail == None) | (fail == "agent"))] = None  # noqa: E711 (elementwise)
        fail[(~success) & (fail == None)] = "agent"  # noqa: E711 (elementwise on object arrays)
        ff = np.where(success, -1, kw["first_failed"])
        ff = np.where(ff >= length, length - 1, ff)
        kw.update(failure=fail, first_failed=ff, completed=np.clip(kw["completed"], 0, length))
        return cls(**kw)

    @classmethod
    def from_trajectories(cls, trajectories: Sequence[Trajectory]) -> Episodes:
        rows = []
        for t in trajectories:
            o = t.outcome
            rows.append((
                t.task.id, t.task.domain, t.task.length, t.trial, family_of(t.task),
                bool(o.success) if o else False,
                ("unscored" if o is None else (None if o.failure is None else str(o.failure))),
                -1 if o is None or o.first_failed is None else o.first_failed,
                0 if o is None else o.subtasks_completed,
            ))
        if not rows:
            raise ValueError("no trajectories")
        tid, dom, ln, tr, fam, su, fa, ff, co = zip(*rows)
        return cls.from_arrays(ln, su, np.asarray(ff), task=tid, trial=tr, failure=fa,
                               completed=co, domain=dom, family=fam)

    def subset(self, mask: np.ndarray) -> Episodes:
        return Episodes(
            task=self.task[mask], task_names=self.task_names, domain=self.domain[mask],
            length=self.length[mask], trial=self.trial[mask], success=self.success[mask],
            failure=self.failure[mask], first_failed=self.first_failed[mask],
            completed=self.completed[mask],
            family=None if self.family is None else self.family[mask],
        )

    @property
    def counted_mask(self) -> np.ndarray:
        """Episodes that count in rates: successes and agent failures."""
        return counted_kinds(self.failure)

    def counted(self) -> Episodes:
        return self.subset(self.counted_mask)


def task_ids(eps: Episodes) -> np.ndarray:
    """Each episode's task id as a string (codes mapped back through ``task_names``)."""
    if eps.task_names:
        return np.asarray(eps.task_names, dtype=object)[eps.task].astype(str)
    return eps.task.astype(str)


def family_of(task) -> str:
    """A generated task's family: its domain and chain of goal templates (tasks built from the
    same templates in the same order share most of their difficulty)."""
    return f"{task.domain}:" + ">".join(s.template for s in task.subtasks)


def load_run(run_dir: str | Path) -> Episodes:
    """Read ``<run_dir>/trajectories.jsonl`` (one Trajectory JSON per line)."""
    path = Path(run_dir) / "trajectories.jsonl"
    trajs = [Trajectory.model_validate_json(line)
             for line in path.read_text().splitlines() if line.strip()]
    return Episodes.from_trajectories(trajs)


class LengthRow(BaseModel):
    length: int
    n: int
    successes: int
    rate: float
    ci: tuple[float, float]  # Clopper-Pearson 95%


def success_by_length(eps: Episodes, level: float = 0.95) -> list[LengthRow]:
    """Empirical success per task length over counted episodes, with exact binomial CIs."""
    eps = eps.counted()
    out = []
    a = (1 - level) / 2
    for L in np.unique(eps.length):
        m = eps.length == L
        n, s = int(m.sum()), int(eps.success[m].sum())
        lo = 0.0 if s == 0 else float(beta.ppf(a, s, n - s + 1))
        hi = 1.0 if s == n else float(beta.ppf(1 - a, s + 1, n - s))
        out.append(LengthRow(length=int(L), n=n, successes=s, rate=s / n, ci=(lo, hi)))
    return out


def failure_counts(eps: Episodes) -> dict[str, int]:
    """Episodes by what happened; ``counted`` is what the rates use."""
    out = {"episodes": len(eps), "success": int((eps.success & eps.counted_mask).sum())}
    for k in FAILURE_KINDS:
        out[k] = int((eps.failure == k).sum())
    out["counted"] = out["success"] + out["agent"]
    out["excluded"] = len(eps) - out["counted"]
    out["agent_with_first_failed"] = int(((eps.failure == "agent") & (eps.first_failed >= 0)).sum())
    return out


@dataclass(frozen=True)
class IntervalData:
    """Grouped interval-censored observations: event time T in ``(left, right]``, with weight."""

    left: np.ndarray  # float
    right: np.ndarray  # float, inf = right-censored (survived past ``left``)
    weight: np.ndarray  # float

    @property
    def n(self) -> float:
        return float(self.weight.sum())

    @property
    def events(self) -> float:
        return float(self.weight[np.isfinite(self.right)].sum())

    @property
    def exposure(self) -> float:
        """Subtasks known to have been survived (sum of ``left``)."""
        return float((self.weight * self.left).sum())

    @property
    def exact(self) -> bool:
        """True when every failure is pinned to one subtask (the geometric closed form applies)."""
        fin = np.isfinite(self.right) & (self.weight > 0)
        return bool(np.all(self.right[fin] - self.left[fin] == 1))

    def nonzero(self) -> IntervalData:
        m = self.weight > 0
        return IntervalData(self.left[m], self.right[m], self.weight[m])


@dataclass(frozen=True)
class Grouping:
    """Episode -> row map, so bootstrap weights regroup with one ``bincount``."""

    left: np.ndarray
    right: np.ndarray
    index: np.ndarray  # row of each episode

    def data(self, episode_weights: np.ndarray | None = None) -> IntervalData:
        w = np.bincount(self.index, weights=episode_weights, minlength=self.left.shape[0])
        return IntervalData(self.left, self.right, w.astype(float))


def intervals(eps: Episodes, endpoint: bool = False) -> Grouping:
    """Survival rows for the counted episodes (``endpoint=True`` ignores per-subtask progress).

    The grouping covers ``eps.counted()`` in order; pass weights of that length to ``data``.
    """
    eps = eps.counted()
    L = eps.length.astype(float)
    fail = ~eps.success
    known = fail & (eps.first_failed >= 0) & (not endpoint)
    left = np.where(eps.success, L, 0.0)
    right = np.where(eps.success, math.inf, L)
    left = np.where(known, eps.first_failed, left)
    right = np.where(known, eps.first_failed + 1.0, right)
    # Unknown failed index: the whole (0, L] interval, NOT (subtasks_completed, L]. An interval
    # whose left end is where the failure happened is not "coarsened at random" (it is only
    # ever observed when T = left + 1), so its likelihood S(left) - S(L) would bias T50 upward.
    if left.shape[0] == 0:
        return Grouping(np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    # Integer key per (left, right) pair (right = inf coded as top + 1): a 1-d unique is far
    # cheaper than a row-wise one, which matters inside simulations and bootstraps.
    top = int(eps.length.max()) + 2
    r = np.where(np.isfinite(right), right, top - 1).astype(np.int64)
    uniq, inv = np.unique(left.astype(np.int64) * top + r, return_inverse=True)
    ul, ur = (uniq // top).astype(float), (uniq % top).astype(float)
    ur[ur == top - 1] = math.inf
    return Grouping(ul, ur, inv.reshape(-1))


def survival_data(eps: Episodes, endpoint: bool = False) -> IntervalData:
    return intervals(eps, endpoint).data()


class KMPoint(BaseModel):
    t: int
    at_risk: float
    events: float
    survival: float


def kaplan_meier(eps: Episodes) -> list[KMPoint]:
    """Discrete product-limit estimate of S(t) from episodes whose failure index is known.

    Episodes failing without a known index are left out (they'd need a Turnbull estimator);
    the log-survival plot falls back to per-length success when nothing is exact.
    """
    d = survival_data(eps)
    m = (d.weight > 0) & (~np.isfinite(d.right) | (d.right - d.left == 1))
    left, right, w = d.left[m], d.right[m], d.weight[m]
    if w.sum() == 0:
        return []
    ev = np.isfinite(right)
    tmax = int(max(right[ev].max(initial=0), left.max(initial=0)))
    # Exit time: events at ``right`` (survived right-1); censored rows survived through ``left``.
    exit_t = np.where(ev, right, left)
    s, out = 1.0, []
    for t in range(1, tmax + 1):
        at_risk = float(w[exit_t >= t].sum())
        events = float(w[ev & (right == t)].sum())
        if at_risk <= 0:
            break
        s *= 1 - events / at_risk
        out.append(KMPoint(t=t, at_risk=at_risk, events=events, survival=s))
    return out
