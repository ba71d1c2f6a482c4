"""The report end to end on fake run directories of real Trajectory JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

from toolzoo.analysis.report import report_command, write_report

from tests.analysis.fake_runs import write_run

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_writes_plots_html_and_summary(tmp_path: Path) -> None:
    a = write_run(tmp_path / "agentA", t50=6.58, infra_every=29, seed=0)
    b = write_run(tmp_path / "agentB", t50=13.0, seed=1)
    (a / "summary.json").write_text(json.dumps({"episodes": 500, "half_life": {"stale": True}}))
    out = tmp_path / "report"
    res = write_report([a, b], out, log_scale=True, reps=100)

    for name in ("success_vs_length", "log_survival", "pass_k"):
        png = out / f"{name}.png"
        assert png.read_bytes().startswith(PNG) and png.stat().st_size > 10_000
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "agentB / agentA" in html
    assert "src='http" not in html and "<link" not in html  # self-contained

    summary = json.loads((a / "summary.json").read_text())
    assert summary["episodes"] == 500  # other keys preserved
    hl = summary["half_life"]
    assert "stale" not in hl and hl["model"] in ("exponential", "weibull")
    assert hl["ci"][0] < 6.58 < hl["ci"][1]  # the true half-life is inside the interval
    # Headline interval: clustered (family bootstrap); the profile one is kept and labelled.
    assert "cluster bootstrap" in hl["ci_method"] and hl["ci"] == hl["ci_bootstrap"]
    assert "assumes independent episodes" in hl["ci_profile_method"] and hl["unit"] == "subtasks"
    assert hl["ci_profile"][0] < hl["t50"] < hl["ci_profile"][1]
    assert 'id="episodes-data"' in html and "T50 (subtasks)" in html  # viewer and units
    assert hl["t80"] < hl["t50"] and 0 <= hl["lr_test_p"] <= 1
    assert summary["failures"]["infra"] > 0
    assert summary["failures"]["counted"] + summary["failures"]["excluded"] == 500
    assert summary["pass_k"]["overall"]["k"] == [1, 2, 3, 4]
    assert res["runs"][str(a)] == {k: summary[k] for k in ("half_life", "pass_k", "failures")}
    assert res["half_life"] == summary["half_life"]  # first run's blocks also at top level

    hb = json.loads((b / "summary.json").read_text())["half_life"]
    ratio = hb["ratio_vs_first"]
    assert ratio["ratio"] == hb["t50"] / hl["t50"]
    assert ratio["ci"][0] < ratio["ratio"] < ratio["ci"][1] and ratio["paired"]


def test_report_endpoint_only_and_all_success(tmp_path: Path, capsys) -> None:
    ep = write_run(tmp_path / "endpoint", t50=6.58, endpoint_only=True, seed=2)
    perfect = write_run(tmp_path / "perfect", t50=1e9, lengths=(1, 2), tasks_per_length=5, trials=2)
    res = write_report([ep], None, reps=50)
    assert Path(res["html"]).parent == ep
    hl = res["runs"][str(ep)]["half_life"]
    assert hl["data"] == "endpoint" and hl["ci"][0] < 6.58 < hl["ci"][1]

    assert report_command([str(perfect)], str(tmp_path / "o"), False) == 0
    hl = json.loads((perfect / "summary.json").read_text())["half_life"]
    assert hl["t50"] is None and not hl["identifiable"] and hl["ci"][1] is None
    printed = capsys.readouterr().out
    assert "perfect" in printed and "no agent failures" in printed
    assert report_command([str(tmp_path / "missing")], None, False) == 1
    assert "report failed" in capsys.readouterr().out
