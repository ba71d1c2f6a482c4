"""``toolzoo analyze FILE...``: time horizons of any success data (CSV, JSONL, run folders)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from toolzoo.analysis.horizons import CI_PROFILE, METR_L2, HorizonResult, fit
from toolzoo.analysis.table import TableError, load_table
from toolzoo.analysis.viewer import viewer_section


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}"


def _ci(ci: Any) -> str:
    if not ci:
        return "—"
    lo, hi = ci
    return f"[{'0' if lo is None else _fmt(lo)}, {'∞' if hi is None else _fmt(hi)}]"


def horizon_html(res: HorizonResult, images: dict[str, Path]) -> str:
    e, u = html.escape, html.escape(res.unit)
    rows = "".join(
        f"<tr><td>{e(h.name)}</td><td>{_fmt(h.t50)}</td><td>{_ci(h.ci)}</td><td>{_ci(h.ci_profile)}</td>"
        f"<td>{_fmt(h.t80)}</td><td>{_ci(h.t80_ci)}</td><td>{h.model}</td><td>{_fmt(h.kappa)}</td>"
        f"<td>{_fmt(h.lr_test_p)}</td><td>{h.n}</td><td>{h.n_tasks}</td><td>{h.n_families}</td>"
        f"<td>{h.excluded}</td><td>{e(h.reason)}</td></tr>" for h in res.agents.values())
    comps = "".join(
        f"<tr><td>{e(c['agent'])} / {e(c['base'])}</td><td>{_fmt(c['ratio'])}</td><td>{_ci(c['ratio_ci'])}</td>"
        f"<td>{_fmt(c['difference'])}</td><td>{_ci(c['difference_ci'])}</td><td>{c['shared_tasks']}</td></tr>"
        for c in res.comparisons)
    imgs = "".join(
        f"<figure><img alt='{k}' src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        f"<figcaption>{e(k)}</figcaption></figure>" for k, p in images.items())
    eps = res.table.episodes if res.table is not None else []
    comp_table = (f"<h2>Paired comparisons</h2><table><tr><th>agents</th><th>T50 ratio</th><th>95% CI</th>"
                  f"<th>T50 difference ({u})</th><th>95% CI</th><th>shared tasks</th></tr>{comps}</table>"
                  if comps else "")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>toolzoo time horizons</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Time horizons</h1>
<p>T50: task length ({u}) at which the fitted success probability is 50%, per agent, from
{e(', '.join(res.table.sources if res.table is not None else []))}. Weights: {e(res.weighting)};
L2 penalty on the logistic slope: {res.l2:g}. <b>95% CI</b>: {e(res.agents[next(iter(res.agents))].ci_method)}
({res.reps} replicates, shared by all agents, so comparisons are paired). <b>Profile CI</b>:
{e(CI_PROFILE)} — too narrow when tasks differ in difficulty.</p>
<table><tr><th>agent</th><th>T50 ({u})</th><th>95% CI</th><th>profile CI (independent episodes)</th>
<th>T80 ({u})</th><th>T80 95% CI</th><th>model</th><th>κ</th><th>LR p (κ=1)</th><th>runs</th><th>tasks</th>
<th>families</th><th>excluded</th><th>note</th></tr>{rows}</table>
{comp_table}
{imgs}
{viewer_section(eps)}
</body></html>"""


def run_analyze(files: list[str], *, length_unit: str | None = None, model: str = "auto",
                l2: float | None = None, weights: str | None = None, metr: bool = False,
                json_out: str | None = None, out: str | None = None, reps: int = 1000, seed: int = 0,
                base: str | None = None, bootstrap: str = "family") -> HorizonResult:
    """Load, fit, and write ``--json`` and the report folder. ``metr``: METR's estimator
    (logistic, L2 0.1 on the slope, inverse-sqrt task weights) unless overridden."""
    if metr:
        model = "logistic" if model == "auto" else model
        l2 = METR_L2 if l2 is None else l2
        weights = weights or "invsqrt"
    table = load_table(files, length_unit)
    res = fit(table, model=model, l2=l2 or 0.0, weights=weights, reps=reps, seed=seed, base=base,  # type: ignore[arg-type]
              bootstrap=bootstrap)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(res.to_json(), indent=2, sort_keys=True))
    if out:
        from toolzoo.analysis.plots import horizon_success_plot, horizon_t50_plot

        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        images = {"success_vs_length": horizon_success_plot(res, d / "success_vs_length.png"),
                  "t50": horizon_t50_plot(res, d / "t50.png")}
        (d / "report.html").write_text(horizon_html(res, images), encoding="utf-8")
    return res


def analyze_command(args) -> int:
    """CLI entry (``toolzoo analyze``); returns the exit code."""
    console = Console(width=170) if not Console().is_terminal else Console()
    try:
        res = run_analyze(args.files, length_unit=args.length_unit, model=args.fit, l2=args.l2,
                          weights=args.weights, metr=args.metr, json_out=args.json, out=args.out,
                          reps=args.reps, seed=args.seed, base=args.base,
                          bootstrap=getattr(args, "bootstrap", "family"))
    except (TableError, FileNotFoundError) as exc:
        console.print(f"[red]analyze failed:[/red] {exc}")
        return 1
    u = res.unit
    t = RichTable(title=f"Time horizons ({u}); CI: clustered bootstrap, {res.reps} replicates")
    for col in ("agent", f"T50 ({u})", "95% CI", "profile CI (indep.)", f"T80 ({u})", "model", "κ", "runs", "tasks"):
        t.add_column(col, justify="right", no_wrap=col != "agent")
    for h in res.agents.values():
        t50 = _fmt(h.t50) if h.identifiable else f"— ({h.reason})"
        t.add_row(h.name, t50, _ci(h.ci), _ci(h.ci_profile), _fmt(h.t80), h.model, _fmt(h.kappa),
                  str(h.n), str(h.n_tasks))
    console.print(t)
    for c in res.comparisons:
        console.print(f"T50 {c['agent']} / {c['base']}: {_fmt(c['ratio'])} {_ci(c['ratio_ci'])} "
                      f"(paired over {c['shared_tasks']} shared tasks)")
    if args.json:
        console.print(f"json: {args.json}")
    if args.out:
        console.print(f"report: {Path(args.out) / 'report.html'}")
    return 0

