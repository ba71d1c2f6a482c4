"""Binomial regressions of success on log2(length), vectorised over bootstrap replicates.

All three horizon models are two-parameter binomial GLMs in x = log2(L) - c (c: the weighted
mean of log2 L, so the fit is the same in any unit and well conditioned from 0.01 to 1e5):

* logistic (METR):  P(success) = expit(eta),            eta = b (x - theta)
* Weibull:          P(success) = exp(-exp(eta)),        eta = ln ln 2 + b (x - theta), kappa = b / ln 2
* constant hazard:  the Weibull with b = ln 2 fixed (kappa = 1): S(L) = 2^(-L / T50)

``theta = log2(T50) - c``. Written as eta = a + b x, the (penalised) negative log-likelihood is

    N(a, b) = -sum_i w_i [y_i log p_i + (1 - y_i) log(1 - p_i)] + (l2 / 2) b^2

with y_i in [0, 1] (a fractional score is a weighted pair of 0 and 1, as in METR's code), and is
minimised by Newton's method with step halving on every replicate at once: ``W`` is a
(replicates x rows) weight matrix, so a bootstrap of 1,000 replicates is a few hundred array
operations rather than 1,000 optimiser calls. The penalty is on the slope only (the intercept is
free), which is what scikit-learn's ``LogisticRegression(C=1/l2)`` minimises with
``sample_weight=w``; it is invariant to the centring c, so T50 is exactly equivariant in the unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit, log_expit

LN2 = math.log(2.0)
LOG_LN2 = math.log(LN2)
Model = Literal["exponential", "weibull", "logistic"]
KAPPA_BOUNDS = (0.05, 20.0)
# The Weibull/exponential linear predictor is log cumulative hazard; past these values
# P(success) is below 1e-289 or 1 - P below 1e-17, and clipping keeps exp/expm1 finite (no warnings).
_ETA_CLIP = (-40.0, 6.5)


@dataclass(frozen=True)
class GLMFit:
    """One fit per replicate (arrays of shape (B,))."""

    model: Model
    a: np.ndarray  # intercept at the centre c
    b: np.ndarray  # slope per doubling of length
    centre: float  # c
    nll: np.ndarray  # penalised negative log-likelihood at the optimum
    converged: np.ndarray  # bool
    status: np.ndarray  # object: "" (identified) or why not
    t50: np.ndarray  # +inf: success does not fall / never fails; 0: never succeeds

    def quantile_length(self, q: float) -> np.ndarray:
        """Length at which the fitted success probability is ``q`` (T50 for q = 0.5)."""
        return quantile_length(self.model, self.a, self.b, self.centre, q, self.status)

    @property
    def kappa(self) -> np.ndarray:
        return self.b / LN2


def _target(model: Model, q: float) -> float:
    """eta at which P(success) = q."""
    if model == "logistic":
        return math.log(q / (1 - q))
    return math.log(math.log(1.0 / q))


def quantile_length(model: Model, a: np.ndarray, b: np.ndarray, centre: float, q: float,
                    status: np.ndarray | None = None) -> np.ndarray:
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    ok = np.ones(a.shape, bool) if status is None else (status == "")
    out = np.full(a.shape, math.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = centre + (_target(model, q) - a) / b
        val = np.exp2(np.clip(x, -1020, 1020))
    out[ok] = val[ok]
    if status is not None:
        out[status == "never succeeds"] = 0.0
    return out


def _loglik(model: Model, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log-likelihood per row: y log p + (1 - y) log(1 - p)."""
    if model == "logistic":
        return y * log_expit(eta) + (1 - y) * log_expit(-eta)
    m = np.exp(np.clip(eta, *_ETA_CLIP))  # cumulative hazard H(L); P(success) = exp(-m)
    return -y * m + (1 - y) * np.log(-np.expm1(-m))


def _score_info(model: Model, eta: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d loglik / d eta, -d2 loglik / d eta2) per row."""
    if model == "logistic":
        p = expit(eta)
        return y - p, p * (1 - p)
    m = np.exp(np.clip(eta, *_ETA_CLIP))
    em1 = np.expm1(m)
    score = m * ((1 - y) / em1 - y)
    # Observed information -d2 ll / d eta2 = y m + (1 - y) m/(e^m - 1) (m e^m/(e^m - 1) - 1) >= 0:
    # the log-likelihood is concave in eta, so plain Newton converges quadratically.
    info = y * m + (1 - y) * (m / em1) * (m / -np.expm1(-m) - 1.0)
    return score, info


def centre_of(x: np.ndarray, w: np.ndarray) -> float:
    tot = float(w.sum())
    return float((w * x).sum() / tot) if tot > 0 else float(x.mean()) if x.size else 0.0


def fit_glm(model: Model, length: np.ndarray, y: np.ndarray, W: np.ndarray, l2: float = 0.0,
            centre: float | None = None, max_iter: int = 100, tol: float = 1e-11) -> GLMFit:
    """Fit every row of ``W`` (B x G weights over G data rows of ``length``, ``y``).

    ``y`` may be (B x G): rows aggregated per length carry each replicate's weighted mean score
    (the binomial likelihood with fractional y equals the per-run one up to a constant)."""
    length = np.asarray(length, float)
    y = np.asarray(y, float)
    W = np.atleast_2d(np.asarray(W, float))
    B = W.shape[0]
    x_raw = np.log2(length)
    c = centre_of(x_raw, W.mean(axis=0)) if centre is None else centre
    x = x_raw - c
    fixed_b = model == "exponential"
    b_lo, b_hi = (-math.inf, math.inf) if model == "logistic" else (
        KAPPA_BOUNDS[0] * LN2, KAPPA_BOUNDS[1] * LN2)

    # Start: the observed success rate at the centre, slope of the right sign.
    tot = W.sum(axis=1)
    ybar = np.clip((W * y).sum(axis=1) / np.where(tot > 0, tot, 1), 0.02, 0.98)
    if model == "logistic":
        a = np.log(ybar / (1 - ybar))
        b = np.full(B, -0.5)
    else:
        a = np.log(-np.log(ybar))
        b = np.full(B, LN2)

    Y = y if y.ndim == 2 else y[None, :]  # per-replicate y (aggregated binomial rows) or shared
    f = objective_rows(model, a, b, x, Y, W, l2)
    converged = np.zeros(B, bool)
    # Replicates that never fail or never succeed have no finite optimum: not fitted at all.
    succ_w = (W * Y).sum(axis=1)
    active = (succ_w > 1e-12 * tot) & (tot - succ_w > 1e-12 * tot)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        aa, bb, Wi = a[idx], b[idx], W[idx]
        Yi = Y[idx] if Y.shape[0] > 1 else Y
        eta = aa[:, None] + bb[:, None] * x[None, :]
        s, info = _score_info(model, eta, Yi)
        ws, wi = Wi * s, Wi * info
        g_a = -ws.sum(axis=1)
        g_b = -(ws * x).sum(axis=1) + l2 * bb
        h_aa = wi.sum(axis=1)
        h_ab = (wi * x).sum(axis=1)
        h_bb = (wi * x * x).sum(axis=1) + l2
        if fixed_b:
            da = -g_a / np.maximum(h_aa, 1e-300)
            db = np.zeros_like(da)
            grad = np.abs(g_a)
        else:
            det = h_aa * h_bb - h_ab * h_ab
            det = np.where(np.abs(det) > 1e-300, det, 1e-300)
            da = -(h_bb * g_a - h_ab * g_b) / det
            db = -(-h_ab * g_a + h_aa * g_b) / det
            # On a slope bound with the step pointing out of it: Newton in a alone (a projected
            # step), else the clipped step keeps failing the line search.
            pinned = ((bb <= b_lo) & (db < 0)) | ((bb >= b_hi) & (db > 0))
            da = np.where(pinned, -g_a / np.maximum(h_aa, 1e-300), da)
            db = np.where(pinned, 0.0, db)
            grad = np.abs(g_a) + np.where(pinned, 0.0, np.abs(g_b))
        da = np.clip(da, -20, 20)
        db = np.clip(db, -20, 20)
        # Step halving: accept the largest step 2^-k (k < 40) that does not increase N.
        t = np.ones(idx.shape[0])
        f_old = f[idx]
        new_a, new_b = aa + da, np.clip(bb + db, b_lo, b_hi)
        f_new = objective_rows(model, new_a, new_b, x, Yi, Wi, l2)
        bad = ~(f_new <= f_old + 1e-12 * np.abs(f_old))
        for _k in range(30):
            if not bad.any():
                break
            t[bad] *= 0.5
            new_a[bad] = aa[bad] + t[bad] * da[bad]
            new_b[bad] = np.clip(bb[bad] + t[bad] * db[bad], b_lo, b_hi)
            f_new[bad] = objective_rows(model, new_a[bad], new_b[bad], x,
                                        Yi[bad] if Yi.shape[0] > 1 else Yi, Wi[bad], l2)
            bad = ~(f_new <= f_old + 1e-12 * np.abs(f_old))
        keep = ~bad
        a[idx[keep]], b[idx[keep]], f[idx[keep]] = new_a[keep], new_b[keep], f_new[keep]
        step = np.abs(t * da) + np.abs(t * db)
        scale = np.maximum(1.0, tot[idx])
        # Running off to infinity (perfect separation): stop; _status says why.
        runaway = (np.abs(a[idx]) > 80) | (np.abs(b[idx]) > 50)
        done = (grad <= tol * scale) | (step < 1e-12) | bad | runaway
        converged[idx[done]] = True
        active[idx[done]] = False

    status = _status(model, a, b, W, Y, tot, l2, length)
    t50 = quantile_length(model, a, b, c, 0.5, status)
    return GLMFit(model=model, a=a, b=b, centre=c, nll=f, converged=converged, status=status,
                  t50=t50)


def objective_rows(model: Model, a, b, x, y, W, l2):
    """N(a, b) per replicate; ``y`` is (G,) or (B, G)."""
    eta = a[:, None] + b[:, None] * x[None, :]
    y = y if np.ndim(y) == 2 else np.asarray(y)[None, :]
    return -(W * _loglik(model, eta, y)).sum(axis=1) + 0.5 * l2 * b * b


def _status(model: Model, a, b, W, y, tot, l2, length) -> np.ndarray:
    """Why a replicate's T50 is not identified ("" when it is)."""
    succ = (W * y).sum(axis=1)
    fail = (W * (1 - y)).sum(axis=1)
    # Distinct lengths with weight, per replicate: columns sorted by length, one OR per run of
    # equal lengths (O(B x G); no G x G indicator).
    order = np.argsort(length, kind="stable")
    sl = length[order]
    starts = np.flatnonzero(np.concatenate([[True], sl[1:] != sl[:-1]])) if sl.size else np.zeros(0, int)
    pos = (W[:, order] > 0).astype(np.int64)
    nlen = (np.add.reduceat(pos, starts, axis=1) > 0).sum(axis=1) if sl.size else np.zeros(W.shape[0], int)
    st = np.full(W.shape[0], "", dtype=object)
    eps = 1e-12 * np.maximum(tot, 1e-300)
    st[fail <= eps] = "never fails: T50 unbounded above"
    st[(succ <= eps) & (st == "")] = "never succeeds"
    st[(tot <= 0)] = "no counted episodes"
    if model == "logistic":
        st[(st == "") & (nlen < 2) & (l2 == 0)] = "needs at least two task lengths"
        st[(st == "") & (b >= 0)] = "success does not fall with length"
        st[(st == "") & (l2 == 0) & (np.abs(b) > 30)] = "perfectly separated (no finite MLE)"
    elif model == "weibull":
        lo, hi = KAPPA_BOUNDS[0] * LN2, KAPPA_BOUNDS[1] * LN2
        st[(st == "") & (nlen < 2)] = "needs at least two task lengths for the shape"
        at = (np.abs(b - lo) < 1e-6 * lo) | (np.abs(b - hi) < 1e-6 * hi)
        st[(st == "") & at] = "kappa at its search bound: shape not identified by these lengths"
    return st


def aggregate(length: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with equal (length, y) share a likelihood term: (lengths, ys, row -> group index)."""
    keys = np.stack([np.asarray(length, float), np.asarray(y, float)], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    return uniq[:, 0], uniq[:, 1], inv.reshape(-1)


def kish_scale(w: np.ndarray) -> np.ndarray:
    """Rescale weights to sum to Kish's effective sample size (sum w)^2 / sum w^2.

    Likelihood-based intervals read the weights' total as the amount of information; this makes
    them scale-free (w and 1000 w give the same interval) and equal to the unweighted interval
    when all weights are equal.
    """
    w = np.asarray(w, float)
    s1, s2 = float(w.sum()), float((w * w).sum())
    if s1 <= 0 or s2 <= 0:
        return w
    return w * (s1 / s2)
