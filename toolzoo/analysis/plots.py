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
    lo, hi = (f"{v:.3g}" if v is not None else "inf" for v in r.headline_ci)
    kap = f", κ={f.kappa:.2f}" if r.model == "weibull" else ""
    return f"{r.name}: {r.model} T50={f.t50:.3g} subtasks [{lo}, {hi}]{kap}"


def _grid(runs: Sequence[RunAnalysis], log_x: bool) -> np.ndarray:
    top = max(max(row.length for row in r.by_length) for r in runs)
    top = max(top * 1.15, 2.0)
    return np.geomspace(0.8, top, 300) if log_x else np.linspace(0.0, top, 300)


def _save(fig, path: Path) -> Path:
    """Write the figure and close it: pyplot keeps every open figure alive until closed."""
    fig.tight_layout()
    # The axis labels go into the PNG's text chunks too, so a reader (or a test) can see the units.
    labels = "; ".join(f"{ax.get_xlabel()} | {ax.get_ylabel()}" for ax in fig.axes)
    fig.savefig(path, metadata={"Description": labels})
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
                    label=f"{r.name}: constant hazard, T50={e.t50:.3g} subtasks")
        w = r.weibull
        if w.t50 is not None and w.identifiable:
            p = f", LR p={r.lr.p_value:.2g}" if r.lr else ""
            ax.plot(t, np.exp(-LN2 * (t / w.t50) ** w.kappa), ":", color=c, lw=1.5,
                    label=f"{r.name}: Weibull κ={w.kappa:.2f}{p}")
    ax.set_yscale("log")
    ax.set_ylim(max(floor * 0.5, 1e-4), 1.1)
    ax.set_xlabel("subtasks survived t (subtasks)")
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


# -- any-data horizons (``toolzoo analyze``) ------------------------------------------------------

def _binned_rates(length: np.ndarray, y: np.ndarray, w: np.ndarray, max_bins: int = 12):
    """Weighted success per distinct length, or per log-spaced bin when there are many lengths."""
    u = np.unique(length)
    if u.size <= max_bins:
        idx, centres = np.searchsorted(u, length), u
    else:
        edges = np.geomspace(length.min(), length.max() * (1 + 1e-9), max_bins + 1)
        idx = np.clip(np.searchsorted(edges, length, side="right") - 1, 0, max_bins - 1)
        centres = np.sqrt(edges[:-1] * edges[1:])
    tot = np.bincount(idx, weights=w, minlength=centres.size)
    succ = np.bincount(idx, weights=w * y, minlength=centres.size)
    n = np.bincount(idx, minlength=centres.size)
    ok = tot > 0
    return centres[ok], succ[ok] / tot[ok], n[ok]


def horizon_success_plot(result, path: Path) -> Path:
    """Observed (weighted) success by length and each agent's fitted curve with its bootstrap
    band, x on a log axis labelled in the data's unit."""
    from toolzoo.analysis.horizons import curve_band, point_curve

    t, w_all = result.table, result.row_weights
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    counted = t.counted
    lo, hi = float(t.length[counted].min()), float(t.length[counted].max())
    grid = np.geomspace(lo / 1.5, hi * 1.5, 300)
    unit = result.unit
    for i, (name, h) in enumerate(result.agents.items()):
        c = COLORS[i % len(COLORS)]
        m = counted & (t.agent == name)
        L, rate, n = _binned_rates(t.length[m], t.score[m], w_all[m])
        ax.plot(L, rate, "o", color=c, ms=4, alpha=0.8, label=f"{name}: observed (weighted)")
        curve = point_curve(h, grid)
        if curve is not None and h.t50 is not None:
            lo_ci, hi_ci = (f"{v:.3g}" if v is not None else "∞" for v in h.ci)
            ax.plot(grid, curve, "-", color=c, lw=2,
                    label=f"{name}: {h.model} T50={h.t50:.3g} {unit} [{lo_ci}, {hi_ci}]")
            band = curve_band(h, grid, result.level)
            if band is not None:
                ax.fill_between(grid, band[0], band[1], color=c, alpha=0.15, lw=0)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"task length ({unit}), log scale")
    ax.set_ylabel("success rate (counted runs)")
    ax.set_title(f"Success vs task length ({unit}); band: {int(result.level * 100)}% clustered bootstrap")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def horizon_t50_plot(result, path: Path) -> Path:
    """T50 per agent with the clustered (headline) and independent-episodes intervals."""
    fig, ax = plt.subplots(figsize=(7.0, 0.6 + 0.5 * max(2, len(result.agents))), dpi=110)
    unit = result.unit
    for i, (name, h) in enumerate(result.agents.items()):
        if h.t50 is None:
            continue
        for ci, off, style, lab in ((h.ci, 0.12, "-", "clustered bootstrap"),
                                    (h.ci_profile, -0.12, ":", "profile (assumes independent episodes)")):
            if ci is None or (ci[0] is None and ci[1] is None):
                continue
            a = ci[0] if ci[0] is not None else h.t50 / 1e3
            b = ci[1] if ci[1] is not None else h.t50 * 1e3
            ax.plot([a, b], [i + off, i + off], style, color=COLORS[0] if off > 0 else COLORS[1], lw=2,
                    label=lab if i == 0 else None)
        ax.plot([h.t50], [i], "ko", ms=5)
    ax.set_yticks(range(len(result.agents)))
    ax.set_yticklabels(list(result.agents))
    ax.set_xscale("log")
    ax.set_xlabel(f"T50 ({unit}), log scale")
    ax.set_title(f"Time horizon T50 and {int(result.level * 100)}% intervals")
    ax.grid(alpha=0.3, which="both", axis="x")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)
