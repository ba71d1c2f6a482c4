"""Closed forms, data semantics and the simple estimators, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolzoo.analysis.data import Episodes, failure_counts, kaplan_meier, success_by_length, survival_data
from toolzoo.analysis.hazard import fit_exponential, horizon, loglik, mle
from toolzoo.analysis.logistic import fit_logistic
from toolzoo.analysis.passk import pass_at_k, pass_hat_k, pass_k, pass_k_counts
from toolzoo.analysis.simulate import simulate


def test_horizon_ratio_closed_form() -> None:
    assert horizon(1.0, 0.8) == pytest.approx(0.32193, abs=1e-5)
    assert horizon(7.0, 0.8) / 7.0 == pytest.approx(math.log(1 / 0.8) / math.log(2))
    assert horizon(5.0, 0.5, kappa=0.6) == pytest.approx(5.0)
    # Weibull: T_q = T50 (ln(1/q)/ln2)^(1/kappa)
    assert horizon(10.0, 0.8, kappa=0.6) == pytest.approx(10 * (math.log(1.25) / math.log(2)) ** (1 / 0.6))


def test_pass_k_closed_form() -> None:
    assert [pass_hat_k(4, 3, k) for k in range(1, 5)] == pytest.approx([0.75, 0.5, 0.25, 0.0])
    assert [pass_at_k(4, 3, k) for k in range(1, 5)] == pytest.approx([0.75, 1.0, 1.0, 1.0])
    pk = pass_k_counts(np.array([4, 4]), np.array([3, 4]))
    assert pk.pass_hat == pytest.approx([0.875, 0.75, 0.625, 0.5])
    with pytest.raises(ValueError):
        pass_hat_k(3, 4, 1)


def test_pass_k_excludes_infra_and_groups_tasks() -> None:
    eps = Episodes.from_arrays(
        length=[2] * 6, success=[True, True, False, False, True, False],
        task=["a", "a", "a", "b", "b", "b"], trial=[0, 1, 2, 0, 1, 2],
        failure=[None, None, "infra", "agent", None, "user_sim"],
    )
    rep = pass_k(eps)
    # task a: 2/2 counted successes; task b: 1/2 -> pass^1 = (1 + 0.5)/2, pass^2 = (1 + 0)/2
    assert rep.overall.pass_hat == pytest.approx([0.75, 0.5])
    counts = failure_counts(eps)
    assert counts["infra"] == 1 and counts["user_sim"] == 1 and counts["counted"] == 4
    assert counts["excluded"] == 2
    assert success_by_length(eps)[0].n == 4


def test_survival_rows_follow_first_failed_semantics() -> None:
    # success at L=4 -> survived 4 (censored); first_failed=2 -> event at t=3; unknown index
    # -> event in (0, 4] whatever subtasks_completed says (see data.intervals); infra -> dropped.
    eps = Episodes.from_arrays(
        length=[4, 4, 4, 4], success=[True, False, False, False],
        first_failed=[None, 2, None, None], completed=[4, 2, 1, 0],
        failure=[None, "agent", "agent", "infra"],
    )
    d = survival_data(eps)
    rows = {(lo, hi): w for lo, hi, w in zip(d.left, d.right, d.weight)}
    assert rows == {(4.0, math.inf): 1.0, (2.0, 3.0): 1.0, (0.0, 4.0): 1.0}
    e = survival_data(eps, endpoint=True)
    assert {(lo, hi) for lo, hi in zip(e.left, e.right)} == {(4.0, math.inf), (0.0, 4.0)}


def test_geometric_closed_form_matches_numeric_maximum() -> None:
    eps = simulate(np.resize([1, 2, 4, 8, 16], 500), 6.0, rng=np.random.default_rng(0))
    d = survival_data(eps)
    lam = mle(d)
    assert lam == pytest.approx(math.log((d.exposure + d.events) / d.exposure))
    grid = np.linspace(lam * 0.5, lam * 1.5, 2001)
    assert abs(grid[np.argmax(loglik(grid, d))] - lam) < lam * 1e-3
    # profile bounds sit exactly chi2_1(0.95)/2 below the maximum
    fit = fit_exponential(d)
    for t in fit.ci:
        assert float(loglik(math.log(2) / t, d)) == pytest.approx(fit.loglik - 1.920729, abs=1e-6)


def test_endpoint_fit_is_binomial_mle() -> None:
    # One length: S(L) = exp(-lam L) = s/n exactly.
    eps = Episodes.from_arrays(length=[5] * 10, success=[True] * 4 + [False] * 6)
    fit = fit_exponential(survival_data(eps, endpoint=True), data="endpoint")
    assert math.exp(-fit.lam * 5) == pytest.approx(0.4, rel=1e-9)


def test_logistic_recovers_metr_parameters() -> None:
    a, b = 3.0, -1.2
    L = np.array([1, 2, 4, 8, 16, 32, 64])
    n = np.full(L.shape, 4000)
    rng = np.random.default_rng(5)
    s = rng.binomial(n, 1 / (1 + np.exp(-(a + b * np.log2(L)))))
    fit = fit_logistic(L, n, s)
    assert fit.slope == pytest.approx(b, abs=0.05)
    assert fit.t50 == pytest.approx(2 ** (a / -b), rel=0.05)
    assert fit.t80 == pytest.approx(2 ** ((math.log(4) - a) / b), rel=0.08)
    sep = fit_logistic([1, 2, 4, 8], [10] * 4, [10, 10, 0, 0])
    assert not sep.identifiable and "separated" in sep.reason


def test_kaplan_meier_matches_geometric_truth() -> None:
    eps = simulate(np.full(4000, 20), 5.0, rng=np.random.default_rng(2))
    km = kaplan_meier(eps)
    for pt in km[:10]:
        assert pt.survival == pytest.approx(2 ** (-pt.t / 5.0), abs=0.03)
