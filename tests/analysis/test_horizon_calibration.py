"""Calibration of the headline (clustered) interval on simulated agents with known truth.

Designs: 100 families x 2 tasks x 3 runs, task lengths log-uniform over 0.25..8 x T50 (drawn per
task). Homogeneous: one hazard for every task. Heterogeneous: per-task hazard lognormal, with a
family effect and a task effect (s.d. 0.6 each on log hazard). The truth for the heterogeneous
design is the pseudo-true T50 that the constant-hazard fit converges to (``pseudo_true_t50``,
by quadrature, checked below against a huge sample).

Replications: 400 per design (MC s.e. of a 95% coverage: 1.1 points, so 95 +- 2 is ~1.8 s.e.).
Bootstrap replicates per replication: 199, not 1,000. Coverage is an average over replications,
and with (B + 1) alpha / 2 an integer the percentile endpoints are exact order statistics whose
coverage error from finite B is O(1/B) (Hall 1986, Ann. Statist. 14:1453); the extra Monte Carlo
noise in each interval's endpoints averages out over 400 replications. 199 replicates keep a
replication at ~0.07 s on one core.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolzoo.analysis import fit
from toolzoo.analysis.simulate import pseudo_true_t50, simulate_table

T50, REPS, BOOT = 10.0, 400, 199
DESIGN = dict(families=100, tasks_per_family=2, runs=3)
DESIGNS = {"homogeneous": (0.0, 0.0), "heterogeneous": (0.6, 0.6)}


def _covered(ci, truth) -> bool:
    lo, hi = ci
    return (lo or 0.0) <= truth <= (math.inf if hi is None else hi)


@pytest.fixture(scope="module")
def coverage() -> dict[str, dict[str, float]]:
    out = {}
    for name, (sf, st) in DESIGNS.items():
        truth = pseudo_true_t50(T50, math.hypot(sf, st))
        rng = np.random.default_rng(2024 + len(name))
        head = prof = 0
        for i in range(REPS):
            t = simulate_table(rng, T50, sigma_family=sf, sigma_task=st, **DESIGN)
            h = fit(t, model="exponential", reps=BOOT, seed=i).agents["sim"]
            head += _covered(h.ci, truth)
            prof += _covered(h.ci_profile, truth)
        out[name] = {"headline": head / REPS, "profile": prof / REPS, "truth": truth}
    return out


def test_pseudo_truth_is_exact_without_heterogeneity_and_matches_a_huge_sample() -> None:
    assert pseudo_true_t50(T50, 0.0) == pytest.approx(T50, rel=1e-10)
    truth = pseudo_true_t50(T50, math.hypot(0.6, 0.6))
    assert truth > T50 * 1.05  # heterogeneity moves the constant-hazard fit's target
    t = simulate_table(np.random.default_rng(9), T50, families=20_000, tasks_per_family=2, runs=3,
                       sigma_family=0.6, sigma_task=0.6)
    big = fit(t, model="exponential", reps=0).agents["sim"]
    assert big.t50 == pytest.approx(truth, rel=0.01)  # s.e. ~0.4% at 120,000 runs


@pytest.mark.slow
@pytest.mark.parametrize("design", list(DESIGNS))
def test_headline_interval_covers_95_percent(coverage, design: str) -> None:
    c = coverage[design]
    assert 0.93 <= c["headline"] <= 0.97, c


@pytest.mark.slow
def test_independent_episodes_interval_undercovers_heterogeneous_tasks(coverage) -> None:
    """The profile interval is right when episodes are independent (homogeneous design) and
    too narrow when tasks differ (runs of one task, and tasks of one family, are correlated)."""
    assert 0.93 <= coverage["homogeneous"]["profile"] <= 0.97, coverage
    assert coverage["heterogeneous"]["profile"] < 0.88, coverage
    assert coverage["heterogeneous"]["headline"] - coverage["heterogeneous"]["profile"] > 0.07


def test_paired_ratio_is_narrower_than_unpaired_and_covers() -> None:
    """Two agents on the same tasks, sharing the tasks' difficulty: the paired interval for
    T50(B)/T50(A) is much narrower than combining independent replicates, and holds the truth."""
    rng = np.random.default_rng(31)
    agents = {"A": 1.0, "B": 2.0}
    t = simulate_table(rng, T50, families=150, tasks_per_family=2, runs=3, sigma_family=0.7,
                       sigma_task=0.7, agents=agents)
    res = fit(t, model="exponential", reps=399, seed=3)
    comp = res.comparisons[0]
    sigma = math.hypot(0.7, 0.7)
    truth = pseudo_true_t50(2 * T50, sigma, span=(0.125, 4.0)) / pseudo_true_t50(T50, sigma)
    assert comp["ratio_ci"][0] < truth < comp["ratio_ci"][1]
    a, b = res.agents["A"].samples, res.agents["B"].samples
    unpaired = np.log(np.quantile(b, 0.975) / np.quantile(a, 0.025)) - np.log(
        np.quantile(b, 0.025) / np.quantile(a, 0.975))
    rs = np.random.default_rng(0).permutation(a.size)  # breaking the pairing
    broken = b / a[rs]
    width_paired = math.log(comp["ratio_ci"][1] / comp["ratio_ci"][0])
    width_broken = float(np.log(np.quantile(broken, 0.975) / np.quantile(broken, 0.025)))
    assert width_paired < 0.75 * width_broken, (width_paired, width_broken, unpaired)


def test_metr_three_level_bootstrap_double_counts_run_level_variance() -> None:
    """Homogeneous tasks: all variance is at the run level, and resampling families, then tasks,
    then runs counts it at every level; the family bootstrap matches the estimator's real spread
    (s.d. of log T50 over replications ~0.057 for this design, measured)."""
    t = simulate_table(np.random.default_rng(5), T50, families=60, tasks_per_family=3, runs=4)
    fam = fit(t, model="exponential", reps=400, seed=1, bootstrap="family").agents["sim"]
    metr = fit(t, model="exponential", reps=400, seed=1, bootstrap="metr").agents["sim"]
    sd_f, sd_m = np.std(np.log(fam.samples)), np.std(np.log(metr.samples))
    assert sd_m > 1.4 * sd_f, (sd_f, sd_m)
    assert 0.04 < sd_f < 0.08
    assert "METR" in metr.ci_method and "families" in fam.ci_method
