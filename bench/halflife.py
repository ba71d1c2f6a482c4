"""Efficiency of the half-life estimators: Var(T50_hat) over simulated replications divided by
the Cramer-Rao bound at the same design (goal <= 1.1), for per-subtask survival data and for
endpoint-only data. Also prints bias, the share of fits within 5% of the truth, and the
profile-interval coverage. Baseline = the Cramer-Rao bound, computed for this run's design.

    python bench/halflife.py [--reps 1000] [--episodes 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from toolzoo.analysis.data import survival_data
from toolzoo.analysis.hazard import fit_exponential
from toolzoo.analysis.simulate import crb_t50, design, simulate, true_t50


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--episodes", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{args.reps} replications x {args.episodes} episodes per p; Var(T50_hat)/CRB (goal <= 1.1);")
    print("+-mc: Monte-Carlo s.e. of the ratio; <5%: share of fits within 5% of the true T50;")
    print("cover: share of 95% profile-likelihood intervals containing the true T50")
    head = (f"{'p':>5} {'T50':>7} {'lengths':<24} {'data':<9} {'Var/CRB':>8} {'+-mc':>5} {'bias%':>7} "
            f"{'sd%':>6} {'crb_sd%':>7} {'<5%':>6} {'cover':>6} {'s':>5}")
    print(head)
    print("-" * len(head))
    for p in (0.02, 0.05, 0.1, 0.2):
        truth = true_t50(p)
        lengths = design(truth, args.episodes)
        for endpoint in (False, True):
            t0 = time.perf_counter()
            est, hits = np.empty(args.reps), 0
            for i in range(args.reps):
                eps = simulate(lengths, truth, rng=rng)
                fit = fit_exponential(survival_data(eps, endpoint=endpoint))
                est[i] = fit.t50 if fit.t50 is not None else math.nan
                hits += fit.ci[0] is not None and fit.ci[1] is not None and fit.ci[0] <= truth <= fit.ci[1]
            crb = crb_t50(lengths, truth, endpoint=endpoint)
            ratio = float(np.nanvar(est, ddof=1) / crb)
            lens = ",".join(str(v) for v in np.unique(lengths))
            print(f"{p:>5} {truth:>7.3f} {lens:<24} {'endpoint' if endpoint else 'survival':<9} "
                  f"{ratio:>8.3f} {ratio * math.sqrt(2 / (args.reps - 1)):>5.3f} {100 * (np.nanmean(est) / truth - 1):>7.2f} "
                  f"{100 * np.nanstd(est) / truth:>6.2f} {100 * math.sqrt(crb) / truth:>7.2f} "
                  f"{np.mean(np.abs(est / truth - 1) < 0.05):>6.3f} {hits / args.reps:>6.3f} "
                  f"{time.perf_counter() - t0:>5.1f}")


if __name__ == "__main__":
    main()
