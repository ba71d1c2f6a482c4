"""``toolzoo report RUN [RUN ...]``: plots, a self-contained report.html, summary.json blocks."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import numpy as np

from toolzoo.analysis.analyze import RunAnalysis, analyze, t50_ratio
from toolzoo.analysis.bootstrap import HierarchicalResampler
from toolzoo.analysis.data import Episodes, load_run, task_ids
from toolzoo.analysis.viewer import episode_payload, viewer_section
from toolzoo.analysis.plots import log_survival, pass_k_plot, success_vs_length
from toolzoo.tools.state import json_finite


def _merge_summary(run_dir: Path, blocks: dict[str, Any]) -> None:
    path = run_dir / "summary.json"
    cur = json.loads(path.read_text()) if path.exists() else {}
    cur.update(blocks)
    path.write_text(json.dumps(cur, indent=2, sort_keys=True))


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}g}"


def _ci(ci: Any) -> str:
    if not ci:
        return "—"
    lo, hi = ci
    return f"[{_fmt(lo)}, {'∞' if hi is None else _fmt(hi)}]"


def _html(runs: list[RunAnalysis], images: dict[str, Path], ratios: list[dict[str, Any]],
          episodes: list[dict[str, Any]] | None = None) -> str:
    e = html.escape
    rows = []
    for r in runs:
        hl = r.half_life()
        pk = ", ".join(f"{v:.3f}" for v in r.pass_k.overall.pass_hat)
        rows.append(
            f"<tr><td>{e(r.name)}</td><td>{_fmt(hl['t50'])}</td><td>{_ci(hl['ci'])}</td>"
            f"<td>{_ci(hl['ci_profile'])}</td><td>{hl['model']}</td><td>{_fmt(hl['kappa'])}</td>"
            f"<td>{_fmt(hl['t80'])}</td><td>{_fmt(hl['lr_test_p'])}</td>"
            f"<td>{_fmt(r.logistic.t50)} / {_fmt(r.logistic.t80)}</td><td>{pk}</td>"
            f"<td>{r.failures['counted']} / {r.failures['excluded']}</td></tr>")
    length_tables = []
    for r in runs:
        body = "".join(f"<tr><td>{x.length}</td><td>{x.n}</td><td>{x.successes}</td>"
                       f"<td>{x.rate:.3f}</td><td>{_ci(x.ci)}</td></tr>" for x in r.by_length)
        fails = ", ".join(f"{k}: {v}" for k, v in r.failures.items())
        length_tables.append(
            f"<h3>{e(r.name)}</h3><p>Episodes — {e(fails)}</p><table><tr><th>length (subtasks)</th><th>n</th>"
            f"<th>successes</th><th>rate</th><th>95% CI</th></tr>{body}</table>")
    ratio_rows = "".join(
        f"<tr><td>{e(x['run'])} / {e(x['base'])}</td><td>{_fmt(x['ratio'])}</td><td>{_ci(x['ci'])}</td></tr>"
        for x in ratios)
    imgs = "".join(
        f"<figure><img alt='{k}' src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        f"<figcaption>{e(k)}</figcaption></figure>" for k, p in images.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>toolzoo half-life report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Half-life report</h1>
<p>T50: task length (subtasks) at which success falls to 50%. Model chosen by a likelihood-ratio
test of constant hazard against Weibull (Weibull when p &lt; 0.05). <b>95% CI</b>: cluster bootstrap
over task families (template chains), with tasks and trials kept in their family, so it accounts
for tasks differing in difficulty; replicates are shared by all runs, so ratios are paired.
<b>Profile CI</b>: profile likelihood, which assumes independent episodes (too narrow when tasks
differ). Infra, user-simulator, judge and harness failures are excluded from every rate.</p>
<table><tr><th>run</th><th>T50 (subtasks)</th><th>95% CI (clustered)</th><th>profile CI (independent episodes)</th><th>model</th><th>κ</th>
<th>T80 (subtasks)</th><th>LR p</th><th>logistic T50 / T80 (subtasks)</th><th>pass^k (k=1..)</th><th>counted / excluded</th></tr>
{''.join(rows)}</table>
{'<h2>T50 ratios</h2><table><tr><th>ratio</th><th>value</th><th>paired bootstrap 95% CI</th></tr>' + ratio_rows + '</table>' if ratios else ''}
{imgs}
<h2>Success by length</h2>{''.join(length_tables)}
{viewer_section(episodes or [])}
</body></html>"""


def write_report(run_dirs: list[Path], out_dir: Path | None = None, log_scale: bool = False,
                 reps: int = 400, seed: int = 0) -> dict[str, Any]:
    """Analyse each run, write PNGs and report.html to ``out_dir`` (default: the first run),
    merge ``half_life``/``pass_k``/``failures`` into each run's summary.json.

    Returns ``{"half_life", "pass_k", "failures"`` (the first run's blocks), ``"runs": {run_dir:
    blocks written}, "ratios": [...], "html": path, "plots": {...}}``.
    """
    run_dirs = [Path(p) for p in run_dirs]
    if not run_dirs:
        raise ValueError("no run directories")
    out = Path(out_dir) if out_dir is not None else run_dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    names = [p.name or str(p) for p in run_dirs]
    if len(set(names)) < len(names):
        names = [str(p) for p in run_dirs]
    loaded = [load_run(p) for p in run_dirs]
    shared = paired_replicates(loaded, names, reps, seed)
    runs = [analyze(eps, name=n, reps=reps, seed=seed, replicates=rep)
            for eps, n, rep in zip(loaded, names, shared)]
    ratios = [t50_ratio(runs[0], r) for r in runs[1:]]
    images = {
        "success_vs_length": success_vs_length(runs, out / "success_vs_length.png", log_scale),
        "log_survival": log_survival(runs, out / "log_survival.png"),
        "pass_k": pass_k_plot(runs, out / "pass_k.png"),
    }
    report = out / "report.html"
    report.write_text(_html(runs, images, ratios, _episodes(run_dirs, names)), encoding="utf-8")
    written: dict[str, Any] = {}
    for i, (p, r) in enumerate(zip(run_dirs, runs)):
        hl = r.half_life()
        if i > 0:
            hl["ratio_vs_first"] = ratios[i - 1]
        blocks = json_finite({"half_life": hl, "pass_k": r.pass_k.model_dump(), "failures": r.failures})
        _merge_summary(p, blocks)
        written[str(p)] = blocks
    # The first run's blocks also sit at the top level: the common single-run caller
    # (``toolzoo run``) reads ``result["half_life"]`` directly.
    return {**written[str(run_dirs[0])], "runs": written, "ratios": json_finite(ratios),
            "html": str(report), "plots": {k: str(v) for k, v in images.items()}}


def paired_replicates(runs: list[Episodes], names: list[str], reps: int, seed: int
                      ) -> list[np.ndarray | None]:
    """One family -> (task, trial) draw per replicate for all runs together, sliced per run:
    runs that share families get paired replicates (``bootstrap.HierarchicalResampler``)."""
    if reps <= 0:
        return [None] * len(runs)
    counted = [e.counted() for e in runs]
    if not sum(len(c) for c in counted):
        return [None] * len(runs)
    fam = np.concatenate([(c.family if c.family is not None else c.task).astype(str) for c in counted])
    task = np.concatenate([task_ids(c) for c in counted])
    who = np.concatenate([np.full(len(c), i) for i, c in enumerate(counted)])
    cell = np.char.add(np.char.add(who.astype(str), "\x1f"), task)
    rs = HierarchicalResampler(fam, task, cell)
    M = rs.draw(np.random.default_rng(seed), reps)
    out, start = [], 0
    for c in counted:
        out.append(M[:, start:start + len(c)])
        start += len(c)
    return out


def _episodes(run_dirs: list[Path], names: list[str]) -> list[dict[str, Any]]:
    """Viewer payloads of every trajectory of the runs (``viewer.episode_payload``)."""
    from toolzoo.core import Trajectory

    out = []
    for p, n in zip(run_dirs, names):
        for line in (p / "trajectories.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(episode_payload(Trajectory.model_validate_json(line), run=n))
    return out


def report_command(run_dirs: list[str], out: str | None, log_scale: bool) -> int:
    """CLI entry: write the report and print one row per run. Returns the exit code."""
    console = Console(width=160) if not Console().is_terminal else Console()
    try:
        res = write_report([Path(p) for p in run_dirs], Path(out) if out else None, log_scale)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]report failed:[/red] {exc}")
        return 1
    table = Table(title="Half-life (lengths in subtasks; CI: clustered bootstrap)")
    for col in ("run", "T50 (subtasks)", "95% CI", "model", "κ", "T80 (subtasks)", "LR p", "pass^k (k=1..)"):
        table.add_column(col, justify="right", no_wrap=col != "run")
    for run, blocks in res["runs"].items():
        hl = blocks["half_life"]
        pk = " ".join(f"{v:.2f}" for v in blocks["pass_k"]["overall"]["pass_hat"])
        run = Path(run).name or run
        t50 = _fmt(hl["t50"]) if hl["identifiable"] else f"{_fmt(hl['t50'])} ({hl['reason']})"
        table.add_row(run, t50, _ci(hl["ci"]), hl["model"], _fmt(hl["kappa"]), _fmt(hl["t80"]),
                      _fmt(hl["lr_test_p"]), pk)
    console.print(table)
    for x in res["ratios"]:
        console.print(f"T50 ratio {x['run']} / {x['base']}: {_fmt(x['ratio'])} {_ci(x['ci'])}")
    console.print(f"report: {res['html']}")
    return 0
