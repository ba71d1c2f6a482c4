"""PNG plots of one or several runs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from toolzoo.analysis.analyze import RunAnalysis  # noqa: E402
from toolzoo.analysis.hazard import LN2  # noqa: E402
from toolzoo.analysis.logistic import logistic_curve  # noqa: E402

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _t50_label(r: RunAnalysis) -> str:
    f = r.chosen
    if f.t50 is None:
        return f"{r.name}: T50 not identifiable"
    lo, hi = (f"{v:.3g}" if v is not None else "inf" for v in f.ci)
    kap = f", κ={f.kappa:.2f}" if r.model == "weibull" else ""
    return f"{r.name}: {r.model} T50={f.t50:.3g} [{lo}, {hi}]{kap}"


def _grid(runs: Sequence[RunAnalysis], log_x: bool) -> np.ndarray:
    top = max(max(row.length for row in r.by_length) for r in runs)
    top = max(top * 1.15, 2.0)
    return np.geomspace(0.8, top, 300) if log_x else np.linspace(0.0, top, 300)


def _save(fig, path: Path) -> Path:
    """Write the figure and close it: pyplot keeps every open figure alive until closed."""
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def success_vs_length(runs: Sequence[RunAnalysis], path: Path, log_x: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    t = _grid(runs, log_x)
    for i, r in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        L = np.array([row.length for row in r.by_length])
        rate = np.array([row.rate for row in r.by_length])
        err = np.array([[row.rate - row.ci[0], row.ci[1] - row.rate] for row in r.by_length]).T
        ax.errorbar(L, rate, yerr=err, fmt="o", color=c, capsize=3, ms=5,
                    label=f"{r.name}: observed (95% CI)")
        f = r.chosen
        if f.t50 is not None:
            s = np.exp(-LN2 * (t / f.t50) ** (f.kappa or 1.0))
            ax.plot(t, s, "-", color=c, lw=2, label=_t50_label(r))
            if f.identifiable:
                lo, hi = r.curve_band(t)
                ax.fill_between(t, lo, hi, color=c, alpha=0.18, lw=0)
        if r.logistic.identifiable:
            ax.plot(t, logistic_curve(r.logistic, np.maximum(t, 1e-9)), ":", color=c, lw=1.5,
                    label=f"{r.name}: logistic on log2 L, T50={r.logistic.t50:.3g}")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    if log_x:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1, 2, 4, not 2^k
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("task length L (subtasks)" + (" — log scale" if log_x else ""))
    ax.set_ylabel("success rate (agent failures only)")
    ax.set_title("Success vs task length, fitted survival curve and 95% band")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="best")
    return _save(fig, path)


def log_survival(runs: Sequence[RunAnalysis], path: Path) -> Path:
    """Kaplan-Meier S(t) from per-subtask data on a log y axis: a straight line means constant
    hazard. The x axis stays linear (that is what makes the line straight). Runs without
    per-subtask data show per-length success instead."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    t = _grid(runs, log_x=False)
    floor = 1.0
    for i, r in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        if r.km:
            tt = np.array([0] + [k.t for k in r.km])
            ss = np.array([1.0] + [k.survival for k in r.km])
            ok = ss > 0
            ax.step(tt[ok], ss[ok], where="post", color=c, lw=1.5,
                    label=f"{r.name}: Kaplan-Meier (per-subtask)")
            floor = min(floor, ss[ok].min())
        else:
            pts = [(row.length, row.rate) for row in r.by_length if row.rate > 0]
            if pts:
                ax.plot(*zip(*pts), "o", color=c, label=f"{r.name}: observed success")
                floor = min(floor, min(p[1] for p in pts))
        e = r.exponential
        if e.t50 is not None:
            ax.plot(t, np.exp(-LN2 * t / e.t50), "--", color=c, lw=1.2,
                    label=f"{r.name}: constant hazard, T50={e.t50:.3g}")
        w = r.weibull
        if w.t50 is not None and w.identifiable:
            p = f", LR p={r.lr.p_value:.2g}" if r.lr else ""
            ax.plot(t, np.exp(-LN2 * (t / w.t50) ** w.kappa), ":", color=c, lw=1.5,
                    label=f"{r.name}: Weibull κ={w.kappa:.2f}{p}")
    ax.set_yscale("log")
    ax.set_ylim(max(floor * 0.5, 1e-4), 1.1)
    ax.set_xlabel("subtasks survived t")
    ax.set_ylabel("P(no failure in first t subtasks), log scale")
    ax.set_title("Log-survival: a straight line is a constant hazard")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7.5, loc="lower left")
    return _save(fig, path)


def pass_k_plot(runs: Sequence[RunAnalysis], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=110)
    for i, r in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        pk = r.pass_k.overall
        ax.plot(pk.k, pk.pass_hat, "o-", color=c, label=f"{r.name}: pass^k (all k succeed)")
        ax.plot(pk.k, pk.pass_at, "s--", color=c, alpha=0.7, label=f"{r.name}: pass@k (any succeeds)")
    ax.set_xlabel("k (trials)")
    ax.set_ylabel("probability over tasks")
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Reliability across repeated trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
