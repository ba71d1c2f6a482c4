"""Calibration against simulated agents whose hazard is known (outcomes drawn directly)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolzoo.analysis.data import survival_data
from toolzoo.analysis.hazard import fit_exponential
from toolzoo.analysis.simulate import crb_t50, design, simulate, true_t50
from toolzoo.analysis.weibull import fit_weibull, lr_test

PS = [0.02, 0.05, 0.1, 0.2]


@pytest.mark.parametrize("p", PS)
def test_single_fit_is_near_truth_and_inside_its_interval(p: float) -> None:
    truth = true_t50(p)
    lengths = design(truth)
    assert lengths.shape[0] == 2000 and len(np.unique(lengths)) >= 5
    eps = simulate(lengths, truth, rng=np.random.default_rng(1000 + int(p * 1000)))
    fit = fit_exponential(survival_data(eps))
    assert fit.identifiable
    # Within 4 Cramer-Rao standard errors (~11%): a bound that a correct estimator cannot miss
    # by chance; the "within 5%" rate is measured over replications below.
    assert abs(fit.t50 / truth - 1) < 4 * math.sqrt(crb_t50(lengths, truth)) / truth
    lo, hi = fit.ci
    assert lo < fit.t50 < hi


@pytest.mark.parametrize("p", PS)
def test_t50_within_5_percent_at_2000_episodes(p: float) -> None:
    """The issue's criterion for one fit of 2,000 episodes. Lengths run to 32x T50 so that nearly
    every long episode ends in an event (the informative ones). Even so the Cramer-Rao bound
    puts the standard error at ~2.5%, so "within 5%" is a ~2-sigma statement that holds for
    about 95% of seeds (measured over replications in the coverage test's spirit); these seeds
    are the ones the other tests use, not picked to pass."""
    truth = true_t50(p)
    lengths = design(truth, hi=32.0)
    assert lengths.shape[0] == 2000
    fit = fit_exponential(survival_data(simulate(lengths, truth, rng=np.random.default_rng(1000 + int(p * 1000)))))
    assert abs(fit.t50 / truth - 1) < 0.05, (fit.t50, truth)


@pytest.mark.parametrize("p", PS)
def test_profile_interval_coverage(p: float) -> None:
    """1,000 replications (more than the 400 asked for, so that +-2% is ~3 standard errors)."""
    truth = true_t50(p)
    lengths = design(truth)
    rng = np.random.default_rng(int(p * 1e4))
    reps = 1000
    hits, est = 0, np.empty(reps)
    for i in range(reps):
        fit = fit_exponential(survival_data(simulate(lengths, truth, rng=rng)))
        hits += fit.ci[0] <= truth <= fit.ci[1]
        est[i] = fit.t50
    assert 0.93 <= hits / reps <= 0.97, hits / reps
    # T50 within 5% of the truth: the estimator is unbiased to <1%, and a single 2,000-episode
    # fit lands within 5% in ~93% of replications. Not always: its relative s.e. at the
    # Cramer-Rao bound is ~2.7% here, so |error| < 5% is a ~1.9-sigma event (docs/analysis.md).
    assert abs(est.mean() / truth - 1) < 0.01
    assert np.mean(np.abs(est / truth - 1) < 0.05) > 0.88
    assert np.median(np.abs(est / truth - 1)) < 0.025


def test_endpoint_interval_coverage() -> None:
    """Endpoint-only data (no per-subtask index): the binomial fit is calibrated too."""
    truth = true_t50(0.1)
    lengths = design(truth)
    rng = np.random.default_rng(7)
    reps, hits = 500, 0
    for _ in range(reps):
        fit = fit_exponential(survival_data(simulate(lengths, truth, rng=rng), endpoint=True),
                              data="endpoint")
        hits += fit.ci[0] <= truth <= fit.ci[1]
    assert 0.925 <= hits / reps <= 0.975, hits / reps


def test_weibull_recovers_kappa_and_lr_rejects_constant_hazard() -> None:
    t50, kappa = 10.0, 0.6
    eps = simulate(design(t50), t50, kappa=kappa, rng=np.random.default_rng(3))
    d = survival_data(eps)
    w, e = fit_weibull(d), fit_exponential(d)
    assert w.identifiable and abs(w.kappa - kappa) < 0.1
    assert abs(w.t50 / t50 - 1) < 0.1
    assert w.ci[0] < t50 < w.ci[1] and w.kappa_ci[0] < kappa < w.kappa_ci[1]
    test = lr_test(e, w)
    assert test.reject and test.p_value < 1e-6
    # Endpoint-only data identifies kappa too (several lengths), less precisely.
    we = fit_weibull(survival_data(eps, endpoint=True), data="endpoint")
    assert abs(we.kappa - kappa) < 0.15


def test_lr_test_size_on_exponential_data() -> None:
    truth = true_t50(0.1)
    lengths = design(truth, episodes=1000)
    rng = np.random.default_rng(11)
    reps, rejected = 400, 0
    for _ in range(reps):
        d = survival_data(simulate(lengths, truth, rng=rng))
        rejected += lr_test(fit_exponential(d), fit_weibull(d, profile=False)).reject
    assert 0.02 <= rejected / reps <= 0.09, rejected / reps
