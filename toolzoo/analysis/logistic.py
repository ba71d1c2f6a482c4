"""METR-style logistic regression of endpoint success on log2(length).

P(success | L) = expit(a + b log2 L); T50 = 2^(-a/b), T80 = 2^((logit 0.8 - a)/b). This is the
unpenalised maximum-likelihood fit the run-folder report shows beside its hazard fits. METR's own
estimator adds an L2 penalty on b and inverse-sqrt task weights: that one is
``toolzoo.analysis.fit(table, model="logistic", l2=0.1, weights="invsqrt")`` (glm.py). Perfectly
separated data (success below some length, failure above) has no finite MLE; that is reported
as not identifiable instead of returning an arbitrary point.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit, logit

from toolzoo.analysis.hazard import Fit


def fit_logistic(length: np.ndarray, n: np.ndarray, s: np.ndarray) -> Fit:
    """Fit on per-length counts: ``n`` episodes and ``s`` successes at each ``length``."""
    length, n, s = (np.asarray(v, dtype=float) for v in (length, n, s))
    keep = n > 0
    length, n, s = length[keep], n[keep], s[keep]
    tot = float(n.sum())
    if np.unique(length).shape[0] < 2:
        return Fit(model="logistic", data="endpoint", identifiable=False, n=tot,
                   reason="needs at least two task lengths")
    if s.sum() == 0 or s.sum() == tot:
        return Fit(model="logistic", data="endpoint", identifiable=False, n=tot,
                   reason="all episodes failed" if s.sum() == 0 else "all episodes succeeded")
    x = np.log2(length)
    xc = x - x.mean()  # centring keeps the Hessian well conditioned

    def nll(th: np.ndarray) -> tuple[float, np.ndarray]:
        z = th[0] + th[1] * xc
        val = -(s * log_expit(z) + (n - s) * log_expit(-z)).sum()
        r = n * expit(z) - s
        return float(val), np.array([r.sum(), (r * xc).sum()])

    res = minimize(nll, np.zeros(2), jac=True, method="BFGS", options={"gtol": 1e-9})
    a_c, b = (float(v) for v in res.x)
    a = a_c - b * float(x.mean())
    if b >= 0 or abs(b) > 30:
        why = "success does not fall with length" if b >= 0 else "perfectly separated (no finite MLE)"
        return Fit(model="logistic", data="endpoint", identifiable=False, n=tot, reason=why,
                   slope=b, intercept=a)
    x50, x80 = -a / b, (float(logit(0.8)) - a) / b
    if not (-60 < x80 < x50 < 60):
        # A nearly flat slope extrapolates the crossing absurdly far from the data.
        return Fit(model="logistic", data="endpoint", identifiable=False, n=tot, slope=b,
                   intercept=a, reason="slope too flat: T50 far outside 2^-60..2^60")
    return Fit(model="logistic", data="endpoint", identifiable=True, n=tot,
               t50=2.0 ** x50, t80=2.0 ** x80, slope=b, intercept=a, loglik=-float(res.fun))


def logistic_curve(fit: Fit, t: np.ndarray) -> np.ndarray:
    return expit(fit.intercept + fit.slope * np.log2(t))

