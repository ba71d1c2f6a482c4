"""Constant-hazard fits: S(t) = exp(-lambda t), T50 = ln2 / lambda.

On per-subtask survival data this is the geometric model (each subtask succeeds with
q = exp(-lambda)); its MLE is closed form, q_hat = survived / attempted. On endpoint data (or
survival data with some failures whose index is unknown) the log-likelihood is
``-lambda * exposure + sum_w log(1 - exp(-lambda (right - left)))``, strictly concave, and its
score is monotone, so the MLE and the profile-likelihood bounds are found with ``brentq``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel
from scipy.optimize import brentq
from scipy.stats import chi2

from toolzoo.analysis.data import IntervalData

LN2 = math.log(2.0)


class Fit(BaseModel):
    """A fitted survival curve. ``None`` bounds in ``ci`` mean unbounded (0 or infinity)."""

    model: Literal["exponential", "weibull", "logistic"]
    data: Literal["survival", "endpoint"]
    identifiable: bool
    reason: str = ""
    t50: float | None = None
    ci: tuple[float | None, float | None] = (None, None)
    t80: float | None = None
    kappa: float | None = None  # Weibull shape (1 = constant hazard)
    kappa_ci: tuple[float | None, float | None] | None = None
    lam: float | None = None  # hazard per subtask (exponential)
    slope: float | None = None  # logistic: change in log-odds per doubling of length
    intercept: float | None = None
    loglik: float | None = None
    n: float = 0.0


def horizon(t50: float, q: float, kappa: float = 1.0) -> float:
    """Length at which success is ``q``: T50 * (ln(1/q)/ln2)^(1/kappa)."""
    return t50 * (math.log(1.0 / q) / LN2) ** (1.0 / kappa)


def loglik(lam: float | np.ndarray, d: IntervalData) -> float | np.ndarray:
    """Log-likelihood of constant hazard ``lam`` (vectorised over ``lam``)."""
    lam = np.asarray(lam, dtype=float)
    fin = np.isfinite(d.right) & (d.weight > 0)
    width, w = d.right[fin] - d.left[fin], d.weight[fin]
    ll = -lam * d.exposure
    with np.errstate(divide="ignore"):
        terms = np.log(-np.expm1(-np.multiply.outer(lam, width)))
    return ll + (terms * w).sum(axis=-1)


def _score(lam: float, d: IntervalData) -> float:
    fin = np.isfinite(d.right) & (d.weight > 0)
    width, w = d.right[fin] - d.left[fin], d.weight[fin]
    return float(-d.exposure + (w * width / np.expm1(lam * width)).sum())


def mle(d: IntervalData) -> float:
    """lambda_hat; 0 when nothing failed, inf when nothing was survived."""
    E, A = d.events, d.exposure
    if E == 0:
        return 0.0
    if A == 0:
        return math.inf
    if d.exact:
        return math.log1p(E / A)  # geometric: q_hat = A / (A + E)
    # Score goes from +inf (lam -> 0) to -A (lam -> inf); bracket then solve.
    lo, hi = 1e-12, 1.0
    while _score(hi, d) > 0:
        hi *= 4
    return brentq(_score, lo, hi, args=(d,), xtol=1e-14, rtol=1e-12)


def _root(f, a: float, b: float) -> float:
    return brentq(f, a, b, xtol=1e-14, rtol=1e-12)


def profile_ci(d: IntervalData, lam_hat: float, level: float = 0.95) -> tuple[float, float]:
    """lambda interval {lam : 2(ll(lam_hat) - ll(lam)) <= chi2_1(level)} (may be [0, x] or [x, inf])."""
    crit = chi2.ppf(level, 1) / 2
    if lam_hat == 0.0:  # ll = -lam * A, decreasing
        return 0.0, crit / d.exposure if d.exposure > 0 else math.inf
    if d.exact:  # geometric: ll = -lam A + E log(1 - e^-lam), scalar math is ~50x cheaper
        A, E = d.exposure, d.events
        ll = lambda x: -x * A + E * math.log(-math.expm1(-x))  # noqa: E731
    else:
        ll = lambda x: float(loglik(x, d))  # noqa: E731
    top = 0.0 if math.isinf(lam_hat) else ll(lam_hat)
    f = lambda x: ll(x) - (top - crit)  # noqa: E731
    b = lam_hat if math.isfinite(lam_hat) else 1.0
    while f(b) <= 0:  # only when lam_hat is inf: walk up until inside the region
        b *= 4
    a = b
    while f(a) > 0:
        a /= 4
    lo = _root(f, a, b)
    if math.isinf(lam_hat):
        return lo, math.inf
    b = lam_hat * 2
    while f(b) > 0:
        b *= 4
    return lo, _root(f, lam_hat, b)


def _t50(lam: float) -> float | None:
    if lam <= 0:
        return None  # infinite half-life
    return LN2 / lam if math.isfinite(lam) else 0.0


def fit_exponential(d: IntervalData, data: Literal["survival", "endpoint"] = "survival",
                    level: float = 0.95) -> Fit:
    """Constant hazard MLE with a profile-likelihood interval on T50."""
    d = d.nonzero()
    if d.n == 0:
        return Fit(model="exponential", data=data, identifiable=False, reason="no counted episodes")
    lam = mle(d)
    lo, hi = profile_ci(d, lam, level)
    ci = (_t50(hi), _t50(lo))
    if lam == 0.0:
        return Fit(model="exponential", data=data, identifiable=False, n=d.n, ci=ci, lam=0.0,
                   kappa=1.0, loglik=0.0,
                   reason="no agent failures: T50 is unbounded above (ci gives a lower bound)")
    if math.isinf(lam):
        return Fit(model="exponential", data=data, identifiable=False, n=d.n, ci=(0.0, ci[1]),
                   kappa=1.0, reason="no subtask ever succeeded: T50 below 1 (ci gives an upper bound)")
    t50 = LN2 / lam
    return Fit(model="exponential", data=data, identifiable=True, n=d.n, t50=t50, ci=ci, lam=lam,
               kappa=1.0, t80=horizon(t50, 0.8), loglik=float(loglik(lam, d)))
