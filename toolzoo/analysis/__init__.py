"""Half-life and time-horizon analysis: success against task length, hazard and logistic fits
with clustered (family bootstrap) and profile-likelihood intervals, pass^k, plots, reports and a
trajectory viewer. See docs/analysis.md.

Any data: ``load_table(paths)`` reads CSV / JSONL / run folders into a :class:`Table`;
``fit(table, model=..., l2=..., weights=...)`` gives each agent's T50 with intervals and paired
comparisons (``HorizonResult.to_json()``). Run folders with per-subtask data: ``analyze``.
"""

from toolzoo.analysis.analyze import RunAnalysis, analyze, t50_ratio
from toolzoo.analysis.data import (
    Episodes, IntervalData, counts_for_rate, load_run, success_by_length, survival_data,
)
from toolzoo.analysis.hazard import Fit, fit_exponential, horizon
from toolzoo.analysis.horizons import METR_L2, AgentHorizon, HorizonResult, fit
from toolzoo.analysis.logistic import fit_logistic
from toolzoo.analysis.passk import pass_at_k, pass_hat_k, pass_k
from toolzoo.analysis.table import Table, TableError, load_table, task_weights
from toolzoo.analysis.weibull import fit_weibull, lr_test

__all__ = [
    "AgentHorizon", "Episodes", "Fit", "HorizonResult", "IntervalData", "METR_L2", "RunAnalysis",
    "Table", "TableError", "analyze", "counts_for_rate", "fit", "fit_exponential", "fit_logistic",
    "fit_weibull", "horizon", "load_run", "load_table", "lr_test", "pass_at_k", "pass_hat_k",
    "pass_k", "success_by_length", "survival_data", "t50_ratio", "task_weights",
]
