"""Weibull survival S(t) = exp(-ln2 (t/T50)^kappa) on interval-censored discrete data.

kappa < 1 is a hazard that falls with length (an agent that survives early subtasks is more
likely to survive later ones); kappa = 1 is exactly the constant hazard, so the two models are
nested and the likelihood-ratio statistic is chi-square with 1 degree of freedom.
Each row contributes log(S(left) - S(right)), computed as -H(left) + log(-expm1(H(left) - H(right)))
with the cumulative hazard H(t) = ln2 (t/T50)^kappa, which stays accurate far in the tails.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.stats import chi2

from toolzoo.analysis.data import IntervalData
from toolzoo.analysis.hazard import LN2, Fit, fit_exponential, horizon

LOG_KAPPA_BOUNDS = (math.log(0.05), math.log(20.0))


def loglik(log_t50: float, log_kappa: float, d: IntervalData) -> float:
    kappa = math.exp(log_kappa)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        hl = LN2 * np.exp(kappa * (np.log(d.left) - log_t50))  # log(0) -> -inf -> H = 0
        hr = LN2 * np.exp(kappa * (np.log(d.right) - log_t50))  # inf -> H = inf
        tail = np.where(np.isfinite(d.right), np.log(-np.expm1(hl - hr)), 0.0)
    val = float((d.weight * (tail - hl)).sum())
    return val if math.isfinite(val) else -1e300


def _identifiable(d: IntervalData) -> str:
    if d.events == 0 or d.exposure == 0:
        return "needs both survived subtasks and failures"
    if d.weight.shape[0] < 3:
        return "needs at least three distinct outcomes (two free probabilities for two parameters)"
    return ""


def _mle(d: IntervalData, start_t50: float, start_kappa: float | None = None
         ) -> tuple[float, float, float]:
    """(log T50, log kappa, loglik) by Nelder-Mead in log space.

    Nelder-Mead rather than L-BFGS-B: with two parameters it needs ~100 cheap evaluations, and
    scipy's L-BFGS-B calls into a threaded BLAS whose start-up cost dominated (4x slower on a
    shared 2-core machine). ``start_kappa`` (e.g. a bootstrap's full-data estimate) skips the
    second start.
    """
    lo_k, hi_k = LOG_KAPPA_BOUNDS

    def nll(th: np.ndarray) -> float:
        if not lo_k <= th[1] <= hi_k:
            return 1e300
        return -loglik(th[0], th[1], d)

    starts = [0.0, math.log(0.5)] if start_kappa is None else [math.log(start_kappa)]
    best = None
    # Default starts: the exponential fit (kappa = 1) and a falling-hazard guess; keep the better.
    for k0 in starts:
        r = minimize(nll, np.array([math.log(start_t50), k0]), method="Nelder-Mead",
                     options={"xatol": 1e-7, "fatol": 1e-9, "initial_simplex": np.array(
                         [[math.log(start_t50), k0], [math.log(start_t50) + 0.2, k0],
                          [math.log(start_t50), k0 + 0.2]])})
        if best is None or r.fun < best.fun:
            best = r
    return float(best.x[0]), float(best.x[1]), -float(best.fun)


def _profile_bounds(prof, x_hat: float, top: float, crit: float, step: float,
                    lim: tuple[float, float]) -> tuple[float | None, float | None]:
    """Where ``prof(x)`` drops ``crit`` below ``top`` on each side of ``x_hat`` (None: not within lim)."""
    out: list[float | None] = []
    for sign in (-1, 1):
        f = lambda x: prof(x) - (top - crit)  # noqa: E731
        a, b = x_hat, x_hat + sign * step
        while f(b) > 0 and lim[0] < b < lim[1]:
            a, b = b, b + sign * step
            step *= 1.6
        if f(b) > 0:
            out.append(None)
        else:
            out.append(brentq(f, min(a, b), max(a, b), xtol=1e-10))
    return out[0], out[1]


def fit_weibull(d: IntervalData, data: Literal["survival", "endpoint"] = "survival",
                level: float = 0.95, profile: bool = True) -> Fit:
    """Weibull MLE for (T50, kappa); profile-likelihood intervals for both when ``profile``."""
    d = d.nonzero()
    why = _identifiable(d)
    if why:
        return Fit(model="weibull", data=data, identifiable=False, reason=why, n=d.n)
    exp = fit_exponential(d, data, level)
    lt, lk, ll = _mle(d, exp.t50 or 1.0)
    if exp.loglik is not None and exp.loglik > ll:  # never worse than the nested model
        lt, lk, ll = math.log(exp.t50), 0.0, exp.loglik
    kappa = math.exp(lk)
    at_bound = min(abs(lk - LOG_KAPPA_BOUNDS[0]), abs(lk - LOG_KAPPA_BOUNDS[1])) < 1e-3
    fit = Fit(model="weibull", data=data, identifiable=not at_bound, n=d.n, t50=math.exp(lt),
              kappa=kappa, t80=horizon(math.exp(lt), 0.8, kappa), loglik=ll,
              reason="kappa at its search bound: shape not identified by these lengths" if at_bound else "")
    if profile and not at_bound:
        crit = chi2.ppf(level, 1) / 2

        def prof_t(x: float) -> float:
            r = minimize_scalar(lambda k: -loglik(x, k, d), bounds=LOG_KAPPA_BOUNDS,
                                method="bounded", options={"xatol": 1e-7})
            return -float(r.fun)

        def prof_k(k: float) -> float:
            r = minimize_scalar(lambda x: -loglik(x, k, d), bounds=(lt - 6, lt + 6),
                                method="bounded", options={"xatol": 1e-7})
            return -float(r.fun)

        lo, hi = _profile_bounds(prof_t, lt, ll, crit, 0.05, (lt - 8, lt + 8))
        fit.ci = (None if lo is None else math.exp(lo), None if hi is None else math.exp(hi))
        klo, khi = _profile_bounds(prof_k, lk, ll, crit, 0.05, LOG_KAPPA_BOUNDS)
        fit.kappa_ci = (None if klo is None else math.exp(klo), None if khi is None else math.exp(khi))
    return fit


class LRTest(BaseModel):
    statistic: float
    p_value: float
    reject: bool
    alpha: float = 0.05


def lr_test(exp: Fit, wei: Fit, alpha: float = 0.05) -> LRTest | None:
    """Constant hazard (kappa = 1) against Weibull: 2 (ll_W - ll_E) ~ chi2(1) under the null."""
    if exp.loglik is None or wei.loglik is None or not (exp.identifiable and wei.identifiable):
        return None
    stat = max(0.0, 2.0 * (wei.loglik - exp.loglik))
    p = float(chi2.sf(stat, 1))
    return LRTest(statistic=stat, p_value=p, reject=p < alpha, alpha=alpha)
