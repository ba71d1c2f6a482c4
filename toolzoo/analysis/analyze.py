"""One run's full half-life analysis: every fit, the model choice, intervals, pass^k, failures."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, PrivateAttr

from toolzoo.analysis.bootstrap import bootstrap, percentile_ci, small_sample_level
from toolzoo.analysis.data import (
    Episodes, KMPoint, LengthRow, failure_counts, intervals, kaplan_meier, success_by_length,
    task_ids,
)
from toolzoo.analysis.hazard import LN2, Fit, fit_exponential, horizon, mle
from toolzoo.analysis.logistic import fit_logistic
from toolzoo.analysis.passk import PassKReport, pass_k
from toolzoo.analysis.weibull import LRTest, _mle as weibull_mle, fit_weibull, lr_test


class RunAnalysis(BaseModel):
    name: str = ""
    data: Literal["survival", "endpoint"]
    failures: dict[str, int]
    by_length: list[LengthRow]
    km: list[KMPoint]
    exponential: Fit
    exponential_endpoint: Fit
    weibull: Fit
    weibull_endpoint: Fit
    logistic: Fit
    lr: LRTest | None
    model: Literal["exponential", "weibull"]
    bootstrap_ci: dict[str, tuple[float | None, float | None]]
    bootstrap_reps: int
    n_families: int = 0
    pass_k: PassKReport
    _samples: dict[str, np.ndarray] = PrivateAttr(default_factory=dict)

    @property
    def chosen(self) -> Fit:
        return self.weibull if self.model == "weibull" else self.exponential

    @property
    def t50_samples(self) -> np.ndarray:
        return self._samples.get(self.model, np.zeros(0))

    @property
    def headline_ci(self) -> tuple[float | None, float | None]:
        """The clustered (bootstrap) interval when there is one, else the profile interval."""
        if self.bootstrap_reps > 0 and self.model in self.bootstrap_ci:
            return self.bootstrap_ci[self.model]
        return self.chosen.ci

    def curve_band(self, t: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise band for the chosen model's S(t): bootstrap percentiles (clustered) when
        there are replicates, else the profile bounds (exponential; exact since S is monotone in
        lambda)."""
        f = self.chosen
        if self.model == "exponential" and self.bootstrap_reps > 0 and "exponential" in self._samples:
            t50s = self._samples["exponential"]
            t50s = t50s[np.isfinite(t50s) & (t50s > 0)]
            if t50s.size >= 10:
                a = (1 - level) / 2
                curves = np.exp(-LN2 * t[None, :] / t50s[:, None])
                return np.quantile(curves, a, axis=0), np.quantile(curves, 1 - a, axis=0)
        if self.model == "exponential":
            lo_t, hi_t = f.ci
            lo = np.exp(-LN2 * t / lo_t) if lo_t else np.zeros_like(t)
            hi = np.exp(-LN2 * t / hi_t) if hi_t else np.ones_like(t)
            return lo, hi
        t50s, ks = self._samples.get("weibull"), self._samples.get("weibull_kappa")
        ok = np.isfinite(t50s) & np.isfinite(ks)
        curves = np.exp(-LN2 * (t[None, :] / t50s[ok, None]) ** ks[ok, None])
        a = (1 - level) / 2
        return np.quantile(curves, a, axis=0), np.quantile(curves, 1 - a, axis=0)

    def half_life(self) -> dict[str, Any]:
        """The ``half_life`` block of summary.json."""
        f = self.chosen
        boot = self.bootstrap_reps > 0 and self.model in self.bootstrap_ci
        return {
            "t50": f.t50,
            "ci": list(self.headline_ci),
            "ci_method": (f"cluster bootstrap over task families (template chains; {self.n_families} "
                          f"families, tasks and trials kept with their family), percentile, "
                          f"{self.bootstrap_reps} replicates; accounts for task clustering")
            if boot else "profile likelihood (chi2 1 dof); assumes independent episodes",
            "ci_profile": list(f.ci),
            "ci_profile_method": "profile likelihood (chi2 1 dof); assumes independent episodes",
            "ci_bootstrap": list(self.bootstrap_ci.get(self.model, (None, None))),
            "unit": "subtasks",
            "model": self.model,
            "kappa": f.kappa if self.model == "weibull" else None,
            "kappa_ci": list(f.kappa_ci) if self.model == "weibull" and f.kappa_ci else None,
            "t80": f.t80,
            "lr_test_p": self.lr.p_value if self.lr else None,
            "lr_statistic": self.lr.statistic if self.lr else None,
            "identifiable": f.identifiable,
            "reason": f.reason,
            "data": self.data,
            "n_counted": self.failures["counted"],
            "logistic": {"t50": self.logistic.t50, "t80": self.logistic.t80,
                         "ci_bootstrap": list(self.bootstrap_ci.get("logistic", (None, None))),
                         "t80_ci_bootstrap": list(self.bootstrap_ci.get("logistic_t80", (None, None))),
                         "identifiable": self.logistic.identifiable, "reason": self.logistic.reason},
            "fits": {k: getattr(self, k).model_dump() for k in
                     ("exponential", "weibull", "exponential_endpoint", "weibull_endpoint", "logistic")},
        }


def analyze(eps: Episodes, name: str = "", reps: int = 400, seed: int = 0,
            level: float = 0.95, alpha: float = 0.05, replicates: np.ndarray | None = None
            ) -> RunAnalysis:
    """``replicates`` (reps x counted episodes): bootstrap multiplicities shared with other runs
    (``write_report`` pairs runs this way); otherwise drawn from ``seed``."""
    eps_all, eps = eps, eps.counted()
    if replicates is not None:
        reps = replicates.shape[0]
    fails = failure_counts(eps_all)
    grp, grp_end = intervals(eps), intervals(eps, endpoint=True)
    surv, endp = grp.data(), grp_end.data()
    data = "survival" if fails["agent_with_first_failed"] > 0 else "endpoint"
    rows = success_by_length(eps)
    exp_fit, wei_fit = fit_exponential(surv, data, level), fit_weibull(surv, data, level)
    lr = lr_test(exp_fit, wei_fit, alpha)
    model = "weibull" if lr is not None and lr.reject else "exponential"

    lengths = np.unique(eps.length)
    lidx = np.searchsorted(lengths, eps.length)

    def stat(w: np.ndarray) -> dict[str, float | None]:
        d = grp.data(w).nonzero()
        lam = mle(d) if d.n else 0.0
        out: dict[str, float | None] = {"exponential": LN2 / lam if lam > 0 else None}
        n = np.bincount(lidx, weights=w, minlength=lengths.shape[0])
        s = np.bincount(lidx, weights=w * eps.success, minlength=lengths.shape[0])
        lg = fit_logistic(lengths, n, s)
        out["logistic"], out["logistic_t80"] = lg.t50, lg.t80
        if model == "weibull":
            if d.events > 0 and d.exposure > 0:
                lt, lk, _ = weibull_mle(d, wei_fit.t50, wei_fit.kappa)
                out["weibull"], out["weibull_kappa"] = math.exp(lt), math.exp(lk)
            else:
                out["weibull"] = out["weibull_kappa"] = None
        return out

    samples = bootstrap(eps, stat, reps=reps, seed=seed, replicates=replicates) if reps > 0 and len(eps) else {}
    fam = eps.family if eps.family is not None else task_ids(eps)
    n_fam = int(np.unique(np.asarray(fam).astype(str)).size) if len(eps) else 0
    # Percentiles read at the small-sample level for n_fam clusters (bootstrap.small_sample_level).
    boot_level = small_sample_level(level, n_fam)
    res = RunAnalysis(
        name=name, data=data, failures=fails, by_length=rows, km=kaplan_meier(eps),
        exponential=exp_fit, exponential_endpoint=fit_exponential(endp, "endpoint", level),
        weibull=wei_fit, weibull_endpoint=fit_weibull(endp, "endpoint", level),
        logistic=fit_logistic([r.length for r in rows], [r.n for r in rows],
                              [r.successes for r in rows]),
        lr=lr, model=model, bootstrap_reps=reps if samples else 0, n_families=n_fam,
        bootstrap_ci={k: percentile_ci(v, boot_level) for k, v in samples.items()},
        pass_k=pass_k(eps),
    )
    res._samples = samples
    return res


def t50_ratio(base: RunAnalysis, other: RunAnalysis, level: float = 0.95) -> dict[str, Any]:
    """other.T50 / base.T50 with a percentile CI from the two runs' bootstrap replicates, taken
    replicate by replicate: paired when the runs were analysed with shared ``replicates``
    (``write_report`` does so), which is what makes the ratio's interval right for runs on the
    same tasks."""
    a, b = base.chosen.t50, other.chosen.t50
    point = b / a if a and b else None
    sa, sb = base.t50_samples, other.t50_samples
    m = min(sa.shape[0], sb.shape[0])
    ci: tuple[float | None, float | None] = (None, None)
    if m:
        with np.errstate(invalid="ignore", divide="ignore"):
            ci = percentile_ci(sb[:m] / sa[:m], level)
    return {"base": base.name, "run": other.name, "ratio": point, "ci": list(ci),
            "models": [base.model, other.model], "paired": True}


__all__ = ["RunAnalysis", "analyze", "t50_ratio", "horizon"]
