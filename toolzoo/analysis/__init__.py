"""Half-life analysis: success against task length, hazard fits with profile-likelihood and
hierarchical-bootstrap intervals, pass^k, plots and reports. See docs/analysis.md."""

from toolzoo.analysis.analyze import RunAnalysis, analyze, t50_ratio
from toolzoo.analysis.data import Episodes, IntervalData, load_run, success_by_length, survival_data
from toolzoo.analysis.hazard import Fit, fit_exponential, horizon
from toolzoo.analysis.logistic import fit_logistic
from toolzoo.analysis.passk import pass_at_k, pass_hat_k, pass_k
from toolzoo.analysis.weibull import fit_weibull, lr_test

__all__ = [
    "Episodes", "Fit", "IntervalData", "RunAnalysis", "analyze", "fit_exponential", "fit_logistic",
    "fit_weibull", "horizon", "load_run", "lr_test", "pass_at_k", "pass_hat_k", "pass_k",
    "success_by_length", "survival_data", "t50_ratio",
]
