"""Time horizons of every agent in a :class:`Table`: T50 with clustered intervals, paired ratios.

``fit(table, model=..., l2=..., weights=...)`` fits each agent's success against log2(length)
(:mod:`toolzoo.analysis.glm`) on the counted rows, and bootstraps family -> task -> run
(:mod:`toolzoo.analysis.bootstrap`) with one set of draws shared by all agents. The headline
``ci`` is that bootstrap's percentile interval, which accounts for task and family clustering;
``ci_profile`` is the profile-likelihood interval, which assumes independent episodes and is too
narrow whenever tasks differ in difficulty (kept for comparison, labelled so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.optimize import brentq, minimize_scalar
from scipy.stats import chi2

from toolzoo.analysis.bootstrap import HierarchicalResampler, bca_ci, percentile_ci
from toolzoo.analysis.glm import (
    KAPPA_BOUNDS, LN2, LOG_LN2, GLMFit, Model, fit_glm, kish_scale, objective_rows,
    quantile_length,
)
from toolzoo.analysis.table import Table, TableError, task_weights

FitChoice = Literal["exponential", "weibull", "logistic", "auto"]
BOOTSTRAP_LEVELS = {
    "family": ("family",),
    "metr": ("family", "task", "run"),
}
CI_BOOTSTRAP = {
    "family": "cluster bootstrap over task families (tasks and runs kept with their family), "
              "BCa; accounts for task and family clustering",
    "metr": "hierarchical bootstrap family -> task -> run (METR's), percentile; accounts for "
            "clustering but counts within-family variance again at each level (conservative)",
}
CI_PROFILE = "profile likelihood (chi2 1 dof); assumes independent episodes"
METR_L2 = 0.1


@dataclass
class AgentData:
    """One agent's counted rows, aggregated per distinct length (a binomial row each)."""

    name: str
    rows: np.ndarray  # indices into the counted table
    w: np.ndarray  # per-row weights (sum 1)
    score: np.ndarray  # per-row y
    length: np.ndarray  # per group (distinct lengths)
    to_group: sparse.csr_matrix  # rows x groups

    def groups(self, row_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B x rows) weights -> ((B x groups) weights, (B x groups) weighted mean score)."""
        rw = np.atleast_2d(row_weights)
        Wg = np.asarray((self.to_group.T @ rw.T).T)
        Sg = np.asarray((self.to_group.T @ (rw * self.score[None, :]).T).T)
        with np.errstate(invalid="ignore", divide="ignore"):
            Yg = np.where(Wg > 0, Sg / np.where(Wg > 0, Wg, 1.0), 0.0)
        return Wg, np.clip(Yg, 0.0, 1.0)

    def group_weights(self, row_weights: np.ndarray) -> np.ndarray:
        return self.groups(row_weights)[0]

    @property
    def y(self) -> np.ndarray:
        """Full-data score per length (with this agent's weights)."""
        return self.groups(self.w)[1][0]


def _agent_data(name: str, rows: np.ndarray, length: np.ndarray, y: np.ndarray, w: np.ndarray) -> AgentData:
    L, inv = np.unique(np.asarray(length, float), return_inverse=True)
    inv = inv.reshape(-1)
    m = sparse.csr_matrix((np.ones(rows.size), (np.arange(rows.size), inv)), shape=(rows.size, L.size))
    return AgentData(name=name, rows=rows, w=w, score=np.asarray(y, float), length=L, to_group=m)


def profile_interval(model: Model, length: np.ndarray, y: np.ndarray, w: np.ndarray,
                     best: GLMFit, level: float = 0.95) -> tuple[float | None, float | None]:
    """{T50 : 2 (l(hat) - l_profile(T50)) <= chi2_1(level)}; ``w``: group weights summed from
    Kish-scaled row weights (``glm.kish_scale``), so that their total is the information.

    Parameterised as eta = a0 + b (x - theta) with theta = log2 T50 - c, the profile maximises
    over b at each theta (b fixed at ln 2 for the exponential). None: unbounded on that side
    (within 2^+-60 of the estimate).
    """
    if best.status[0] != "":
        return None, None
    wk = np.asarray(w, float)[None, :]
    c = best.centre
    x = np.log2(length) - c
    a0 = 0.0 if model == "logistic" else LOG_LN2
    theta_hat = math.log2(best.t50[0]) - c
    b_hat = float(best.b[0])

    def nll(theta: float, b: float) -> float:
        a = np.array([a0 - b * theta])
        return float(objective_rows(model, a, np.array([b]), x, y, wk, 0.0)[0])

    if model == "exponential":
        prof = lambda th: nll(th, LN2)  # noqa: E731
    else:
        lo_b, hi_b = ((-60.0, -1e-9) if model == "logistic"
                      else (KAPPA_BOUNDS[0] * LN2, KAPPA_BOUNDS[1] * LN2))

        def prof(th: float) -> float:
            r = minimize_scalar(lambda b: nll(th, b), bounds=(lo_b, hi_b), method="bounded",
                                options={"xatol": 1e-9})
            return min(float(r.fun), nll(th, b_hat))

    top = prof(theta_hat)
    crit = chi2.ppf(level, 1) / 2
    g = lambda th: prof(th) - top - crit  # noqa: E731
    out = []
    for sign in (-1.0, 1.0):
        step, inner, outer = 0.05, theta_hat, theta_hat + sign * 0.05
        while g(outer) < 0 and abs(outer - theta_hat) < 60:
            inner, outer = outer, outer + sign * step
            step *= 1.6
        if g(outer) < 0:
            out.append(None)
        else:
            out.append(2.0 ** (c + brentq(g, min(inner, outer), max(inner, outer), xtol=1e-12)))
    return out[0], out[1]


def lr_test_p(exp: GLMFit, wei: GLMFit, length, y, w) -> float | None:
    """Constant hazard (kappa = 1) against Weibull, on Kish-scaled weights (as in
    ``profile_interval``): 2 (l_W - l_E) ~ chi2_1."""
    if exp.status[0] or wei.status[0]:
        return None
    wk = np.asarray(w, float)[None, :]
    x = np.log2(length) - exp.centre
    ne = objective_rows("exponential", exp.a, exp.b, x, y, wk, 0.0)[0]
    nw = objective_rows("weibull", wei.a, wei.b, x, y, wk, 0.0)[0]
    return float(chi2.sf(max(0.0, 2 * (ne - nw)), 1))


@dataclass
class AgentHorizon:
    name: str
    model: Model
    t50: float | None
    ci: tuple[float | None, float | None]
    ci_method: str
    ci_profile: tuple[float | None, float | None] | None  # None: not defined (penalised fit)
    t80: float | None
    t80_ci: tuple[float | None, float | None]
    kappa: float | None
    kappa_ci: tuple[float | None, float | None] | None
    slope: float | None  # change in eta per doubling of length
    n: int  # counted runs
    n_tasks: int
    n_families: int
    excluded: int
    identifiable: bool
    reason: str
    lr_test_p: float | None
    fits: dict[str, dict[str, Any]]
    samples: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # bootstrap T50s
    jackknife: np.ndarray | None = field(repr=False, default=None)  # leave-one-family-out T50s
    curve: tuple[np.ndarray, np.ndarray] | None = field(repr=False, default=None)  # replicate (a, b)
    centre: float = 0.0

    def to_json(self, unit: str) -> dict[str, Any]:
        return _clean({
            "t50": self.t50, "ci": list(self.ci), "ci_method": self.ci_method,
            "ci_profile": None if self.ci_profile is None else list(self.ci_profile),
            "ci_profile_method": CI_PROFILE if self.ci_profile is not None else
            "not defined for a penalised (L2) fit",
            "t80": self.t80, "t80_ci": list(self.t80_ci), "model": self.model, "n": self.n,
            "kappa": self.kappa, "kappa_ci": None if self.kappa_ci is None else list(self.kappa_ci),
            "slope_per_doubling": self.slope, "unit": unit, "n_tasks": self.n_tasks,
            "n_families": self.n_families, "excluded": self.excluded,
            "identifiable": self.identifiable, "reason": self.reason,
            "lr_test_p": self.lr_test_p, "fits": self.fits,
        })


@dataclass
class HorizonResult:
    agents: dict[str, AgentHorizon]
    comparisons: list[dict[str, Any]]
    unit: str
    reps: int
    level: float
    l2: float
    weighting: str
    bootstrap: str = "family"
    table: Table = field(repr=False, default=None)  # type: ignore[assignment]
    row_weights: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]  # per table row

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "level": self.level, "bootstrap_reps": self.reps, "l2": self.l2,
                "weights": self.weighting, "bootstrap": self.bootstrap,
                "agents": {k: v.to_json(self.unit) for k, v in self.agents.items()},
                "comparisons": _clean(self.comparisons)}


def _clean(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    return x


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) and v > 0 else None


def _summary(model: Model, f: GLMFit) -> dict[str, Any]:
    ok = f.status[0] == ""
    return {"t50": _finite(f.t50[0]) if ok else None, "t80": _finite(f.quantile_length(0.8)[0]) if ok else None,
            "slope_per_doubling": float(f.b[0]), "intercept_at_centre": float(f.a[0]),
            "centre_log2_length": f.centre, "kappa": float(f.kappa[0]) if model != "logistic" else None,
            "identifiable": ok, "reason": str(f.status[0]), "converged": bool(f.converged[0])}


def resolve_weights(table: Table, weights: str | None) -> tuple[np.ndarray, str]:
    """Per-row weights, normalised to sum to 1 per agent, and a description.

    ``weights`` is a numeric column of the table (``weight``, or any other), a scheme
    (``invsqrt``, ``equal_task``, ``none``), or None: the table's ``weight`` column when it has
    one that is not all ones, else ``none``.
    """
    if weights in ("invsqrt", "equal_task", "none"):
        return task_weights(table, weights), weights
    if weights is None:
        col, desc = table.weight, "weight column" if np.any(table.weight != 1) else "none"
    else:
        col, desc = table.column(weights), f"column {weights!r}"
    w = np.where(table.counted, col, 0.0).astype(float)
    for a in table.agents:
        m = table.agent == a
        tot = w[m].sum()
        if tot <= 0 and table.counted[m].any():
            raise TableError(f"agent {a!r}: its weights sum to 0")
        if tot > 0:
            w[m] /= tot
    return w, desc


def fit(table: Table, model: FitChoice = "auto", l2: float = 0.0, weights: str | None = None,
        reps: int = 1000, seed: int = 0, level: float = 0.95, base: str | None = None,
        bootstrap: str = "family", chunk: int = 250) -> HorizonResult:
    """T50 per agent. ``l2`` penalises the logistic slope as METR does (their value: 0.1, with
    ``weights="invsqrt"``); it is undefined for the hazard models. ``base``: the agent the others
    are compared with (default: the first). ``bootstrap``: ``family`` (the headline: resample
    families, keep what is inside them) or ``metr`` (resample family -> task -> run)."""
    if bootstrap not in BOOTSTRAP_LEVELS:
        raise TableError(f"unknown bootstrap {bootstrap!r} (family, metr)")
    if l2 and model != "logistic":
        raise TableError("the L2 penalty (--l2) is defined for the logistic fit only (METR's estimator)")
    if l2 < 0:
        raise TableError("--l2 must be >= 0")
    w_all, wdesc = resolve_weights(table, weights)
    keep = table.counted & (w_all > 0)
    t = table.subset(keep)
    w = w_all[keep]
    if len(t) == 0:
        raise TableError("no counted rows (every row is an excluded failure kind or has weight 0)")
    names = t.agents
    agents = {a: _agent_data(a, np.flatnonzero(t.agent == a), t.length[t.agent == a],
                             t.score[t.agent == a], w[t.agent == a]) for a in names}
    # Full-data fits.
    fits: dict[str, dict[Model, GLMFit]] = {}
    for a, d in agents.items():
        Wg, Yg = d.groups(d.w)
        fits[a] = {m: fit_glm(m, d.length, Yg, Wg, l2=l2 if m == "logistic" else 0.0)
                   for m in ("exponential", "weibull", "logistic")}
    chosen: dict[str, Model] = {}
    lrp: dict[str, float | None] = {}
    for a, d in agents.items():
        Wg = d.group_weights(kish_scale(d.w))[0]
        lrp[a] = lr_test_p(fits[a]["exponential"], fits[a]["weibull"], d.length, d.y, Wg)
        if model == "auto":
            chosen[a] = "weibull" if lrp[a] is not None and lrp[a] < 0.05 else "exponential"
        else:
            chosen[a] = model  # type: ignore[assignment]
    # Bootstrap, shared draws.
    samples = {a: {"t50": [], "t80": [], "kappa": [], "a": [], "b": []} for a in names}
    if reps > 0:
        cell = np.array([f"{ag}\x1f{tk}" for ag, tk in zip(t.agent, t.task)], dtype=object)
        rs = HierarchicalResampler(t.family.astype(str), t.task.astype(str), cell.astype(str),
                                   levels=BOOTSTRAP_LEVELS[bootstrap])
        rng = np.random.default_rng(seed)
        done = 0
        while done < reps:
            k = min(chunk, reps - done)
            M = rs.draw(rng, k).astype(float)
            for a, d in agents.items():
                m = chosen[a]
                f0 = fits[a][m]
                Wg, Yg = d.groups(M[:, d.rows] * d.w[None, :])
                f = fit_glm(m, d.length, Yg, Wg, l2=l2 if m == "logistic" else 0.0, centre=f0.centre)
                s = samples[a]
                s["t50"].append(f.t50)
                s["t80"].append(f.quantile_length(0.8))
                s["kappa"].append(np.where(f.status == "", f.kappa, np.nan))
                s["a"].append(np.where(f.status == "", f.a, np.nan))
                s["b"].append(np.where(f.status == "", f.b, np.nan))
            done += k
    fam_codes = np.unique(t.family.astype(str), return_inverse=True)[1].reshape(-1)
    n_fam = int(fam_codes.max()) + 1
    jack: dict[str, np.ndarray | None] = {}
    for a, d in agents.items():
        # Leave-one-family-out T50s (BCa's acceleration, and the paired ratios' jackknife).
        jack[a] = None
        if reps > 0 and bootstrap == "family" and n_fam > 2:
            keep_w = (fam_codes[d.rows][None, :] != np.arange(n_fam)[:, None]) * d.w[None, :]
            m = chosen[a]
            present = np.unique(fam_codes[d.rows])
            Wj, Yj = d.groups(keep_w[present])
            jack[a] = fit_glm(m, d.length, Yj, Wj,
                              l2=l2 if m == "logistic" else 0.0, centre=fits[a][m].centre).t50
    use_bca = bootstrap == "family"

    def interval(samples, point, jk):
        # Clusters: the families the agent was run on (its jackknife's length).
        g = None if jk is None else int(jk.size)
        return bca_ci(samples, point, jk, level, g) if use_bca else percentile_ci(samples, level)

    out: dict[str, AgentHorizon] = {}
    for a, d in agents.items():
        m = chosen[a]
        f = fits[a][m]
        s = {k: np.concatenate(v) if v else np.zeros(0) for k, v in samples[a].items()}
        ok = f.status[0] == ""
        penalised = m == "logistic" and l2 > 0
        prof = None if penalised else (
            profile_interval(m, d.length, d.y, d.group_weights(kish_scale(d.w))[0], f, level)
            if ok else (None, None))
        if ok:
            ci = interval(s["t50"], float(f.t50[0]), jack[a]) if reps > 0 else (prof or (None, None))
            t80_ci = interval(s["t80"], float(f.quantile_length(0.8)[0]),
                              None if jack[a] is None else jack[a] * float(f.quantile_length(0.8)[0] / f.t50[0])
                              if m == "exponential" else None) if reps > 0 else (None, None)
        else:
            ci = percentile_ci(s["t50"], level) if reps > 0 else (None, None)
            t80_ci = (None, None)
        kci = percentile_ci(s["kappa"], level) if (m == "weibull" and reps > 0) else None
        rows = table.agent == a
        out[a] = AgentHorizon(
            name=a, model=m, t50=_finite(f.t50[0]) if ok else None, ci=ci,
            ci_method=CI_BOOTSTRAP[bootstrap] if reps > 0 else CI_PROFILE, ci_profile=prof,
            t80=_finite(f.quantile_length(0.8)[0]) if ok else None, t80_ci=t80_ci,
            kappa=float(f.kappa[0]) if m == "weibull" else (1.0 if m == "exponential" else None),
            kappa_ci=kci, slope=float(f.b[0]), n=int(d.rows.size),
            n_tasks=int(np.unique(t.task[d.rows].astype(str)).size),
            n_families=int(np.unique(t.family[d.rows].astype(str)).size),
            excluded=int((rows & ~table.counted).sum()), identifiable=ok, reason=str(f.status[0]),
            lr_test_p=lrp[a], fits={k: _summary(k, v) for k, v in fits[a].items()},
            samples=s["t50"], jackknife=jack[a],
            curve=(s["a"], s["b"]) if s["a"].size else None, centre=f.centre,
        )
    comps = compare(out, base or names[0], level, t, CI_BOOTSTRAP[bootstrap], use_bca)
    return HorizonResult(agents=out, comparisons=comps, unit=table.unit, reps=reps, level=level,
                         l2=l2, weighting=wdesc, bootstrap=bootstrap, table=table, row_weights=w_all)


def compare(res: dict[str, AgentHorizon], base: str, level: float, t: Table,
            method: str = CI_BOOTSTRAP["family"], use_bca: bool = True) -> list[dict[str, Any]]:
    """Each agent against ``base``: ratio and difference of T50, percentile intervals from the
    paired replicates (replicate i of both agents used the same families and tasks)."""
    if base not in res:
        raise TableError(f"no agent {base!r} to compare with (agents: {', '.join(res)})")
    b = res[base]
    base_tasks = set(t.task[t.agent == base].astype(str).tolist())
    out = []
    for name, r in res.items():
        if name == base:
            continue
        ratio = r.t50 / b.t50 if r.t50 and b.t50 else None
        diff = r.t50 - b.t50 if r.t50 is not None and b.t50 is not None else None
        rci = dci = (None, None)
        m = min(r.samples.size, b.samples.size)
        if m:
            x, y = r.samples[:m], b.samples[:m]
            with np.errstate(invalid="ignore", divide="ignore"):
                # The two agents' jackknives leave out different family sets unless both ran
                # every family: the acceleration then comes from neither (a = 0, bias-corrected).
                same = (r.jackknife is not None and b.jackknife is not None
                        and r.jackknife.size == b.jackknife.size)
                jr = r.jackknife / b.jackknife if same else None
                g = min(r.jackknife.size, b.jackknife.size) if (r.jackknife is not None and b.jackknife is not None) else None
                rci = bca_ci(x / y, ratio, jr, level, g) if use_bca else percentile_ci(x / y, level)
                dci = percentile_ci(np.where(np.isfinite(x) & np.isfinite(y), x - y, np.nan), level)
        shared = len(base_tasks & set(t.task[t.agent == name].astype(str).tolist()))
        out.append({"base": base, "agent": name, "ratio": ratio, "ratio_ci": list(rci),
                    "difference": diff, "difference_ci": list(dci), "shared_tasks": shared,
                    "paired": True, "method": method})
    return out


def curve_band(h: AgentHorizon, lengths: np.ndarray, level: float = 0.95
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """Pointwise percentile band of P(success | L) over the bootstrap replicates."""
    if h.curve is None:
        return None
    a, b = h.curve
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10:
        return None
    x = np.log2(lengths) - h.centre
    eta = a[ok, None] + b[ok, None] * x[None, :]
    p = success_curve(h.model, eta)
    q = (1 - level) / 2
    return np.quantile(p, q, axis=0), np.quantile(p, 1 - q, axis=0)


def success_curve(model: Model, eta: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    if model == "logistic":
        return expit(eta)
    return np.exp(-np.exp(np.clip(eta, -40, 6.5)))


def point_curve(h: AgentHorizon, lengths: np.ndarray) -> np.ndarray | None:
    f = h.fits[h.model]
    if not f["identifiable"]:
        return None
    x = np.log2(lengths) - f["centre_log2_length"]
    return success_curve(h.model, f["intercept_at_centre"] + f["slope_per_doubling"] * x)


__all__ = ["AgentHorizon", "HorizonResult", "fit", "compare", "curve_band", "point_curve",
           "profile_interval", "resolve_weights", "quantile_length", "METR_L2"]
