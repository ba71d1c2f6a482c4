"""Property tests: fits and aggregations never crash and stay in range on arbitrary data."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolzoo.analysis.data import Episodes, survival_data
from toolzoo.analysis.hazard import fit_exponential
from toolzoo.analysis.logistic import fit_logistic
from toolzoo.analysis.passk import pass_k_counts
from toolzoo.analysis.weibull import fit_weibull


@st.composite
def episodes(draw) -> Episodes:
    n = draw(st.integers(1, 40))
    lengths = draw(st.lists(st.integers(1, 32), min_size=n, max_size=n))
    success = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    known = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    frac = draw(st.lists(st.floats(0, 0.999), min_size=n, max_size=n))
    ff = [int(f * L) if k else None for L, k, f in zip(lengths, known, frac)]
    return Episodes.from_arrays(lengths, success, ff)


def _check(fit, eps: Episodes) -> None:
    if fit.identifiable:
        assert fit.t50 is not None and math.isfinite(fit.t50) and fit.t50 > 0
        lo, hi = fit.ci
        assert lo is None or lo <= fit.t50 * (1 + 1e-6)
        assert hi is None or hi >= fit.t50 * (1 - 1e-6)
    else:
        assert fit.reason  # says why


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(episodes(), st.booleans())
def test_exponential_fit_never_crashes(eps: Episodes, endpoint: bool) -> None:
    fit = fit_exponential(survival_data(eps, endpoint), "endpoint" if endpoint else "survival")
    _check(fit, eps)
    if eps.success.all():
        assert not fit.identifiable and fit.ci[1] is None and fit.ci[0] > 0  # lower bound only
    # Nothing survived (every episode failed, and no subtask is known to have been completed):
    # the hazard is unbounded, T50 not identifiable.
    nothing_survived = (~eps.success).all() and (endpoint or (eps.first_failed <= 0).all())
    if nothing_survived:
        assert not fit.identifiable and fit.ci[0] == 0.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(episodes())
def test_weibull_fit_never_crashes(eps: Episodes) -> None:
    fit = fit_weibull(survival_data(eps))
    _check(fit, eps)
    if fit.kappa is not None:
        assert 0.05 <= fit.kappa <= 20


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 64), st.integers(0, 30), st.integers(0, 30)),
                min_size=1, max_size=8))
def test_logistic_fit_never_crashes(rows) -> None:
    L = [r[0] for r in rows]
    n = [r[1] + r[2] for r in rows]
    s = [r[1] for r in rows]
    fit = fit_logistic(L, n, s)
    if fit.identifiable:
        assert math.isfinite(fit.t50) and fit.t50 > 0 and fit.t80 < fit.t50
    else:
        assert fit.reason


@given(st.integers(1, 8), st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_pass_k_bounds_and_monotone(trials: int, frac) -> None:
    n = np.full(len(frac), trials)
    c = np.array([round(f * trials) for f in frac])
    pk = pass_k_counts(n, c)
    hat, at = np.array(pk.pass_hat), np.array(pk.pass_at)
    assert pk.k == list(range(1, trials + 1))
    assert np.all((hat >= 0) & (hat <= 1)) and np.all((at >= 0) & (at <= 1))
    assert np.all(hat <= at + 1e-12)
    assert np.all(np.diff(hat) <= 1e-12)  # pass^k non-increasing
    assert np.all(np.diff(at) >= -1e-12)  # pass@k non-decreasing
    assert pk.pass_hat[0] == np.mean(c / n)


@given(st.lists(st.tuples(st.integers(1, 8), st.integers(0, 8)), min_size=1, max_size=20))
def test_pass_k_unequal_trials_stays_in_range(tasks) -> None:
    n = np.array([t[0] for t in tasks])
    c = np.array([min(t[1], t[0]) for t in tasks])
    pk = pass_k_counts(n, c)
    assert all(0 <= v <= 1 for v in pk.pass_hat + pk.pass_at)
    assert pk.tasks == [int((n >= k).sum()) for k in pk.k]
