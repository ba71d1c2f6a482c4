"""Any data in: CSV / JSONL / run folders -> Table -> fit, errors, units, weights, stability."""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from toolzoo.analysis import Table, TableError, fit, load_table
from toolzoo.analysis.data import counts_for_rate
from toolzoo.cli import main

from tests.analysis.fake_runs import write_run


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _seconds_rows(rng: np.random.Generator, t50: float = 120.0, n_task: int = 90) -> list[dict]:
    """Two agents, lengths in seconds from 0.5 to 30,000, families of 3 tasks, 3 runs each."""
    L = np.exp(np.linspace(math.log(0.5), math.log(30000), n_task))
    rows = []
    for agent, h in (("fast", t50), ("slow", t50 / 4)):
        for i, length in enumerate(L):
            for r in range(3):
                p = 2.0 ** (-length / h)
                rows.append({"agent": agent, "task": f"t{i}", "family": f"f{i // 3}",
                             "length": f"{length:.6g}", "success": int(rng.random() < p)})
    return rows


def test_cli_on_seconds_csv_no_warning_and_seconds_on_every_label(tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "runs.csv", _seconds_rows(np.random.default_rng(0)))
    out, js = tmp_path / "out", tmp_path / "res.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numerical (or other) warning fails the test
        assert main(["analyze", str(csv_path), "--length-unit", "seconds", "--json", str(js),
                     "--out", str(out), "--reps", "200"]) == 0
    res = json.loads(js.read_text())
    assert res["unit"] == "seconds"
    for name in ("fast", "slow"):
        a = res["agents"][name]
        assert a["unit"] == "seconds" and a["n"] == 270 and a["ci"][0] < a["t50"] < a["ci"][1]
        assert {"t50", "ci", "model", "n"} <= set(a)
    assert 1.5 < res["agents"]["fast"]["t50"] / res["agents"]["slow"]["t50"] < 10
    comp = res["comparisons"][0]
    assert comp["paired"] and comp["shared_tasks"] == 90 and comp["ratio_ci"][0] < comp["ratio"] < comp["ratio_ci"][1]
    for png in ("success_vs_length.png", "t50.png"):
        labels = Image.open(out / png).text["Description"]
        assert "(seconds)" in labels, labels
    html = (out / "report.html").read_text()
    assert "T50 (seconds)" in html and "assumes independent episodes" in html
    assert "src='http" not in html and "<link" not in html


def test_lengths_are_floats_and_fractional_scores_work(tmp_path: Path) -> None:
    rows = [{"agent": "a", "task": f"t{i}", "length": 3.171 * (i + 1) / 7, "score": s}
            for i, s in enumerate([1, 0.75, 0.5, 0.5, 0.25, 0.0, 0.0, 0.1])]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = load_table(p)
    assert t.length[0] == pytest.approx(3.171 / 7) and t.length[0] < 1  # not truncated, not rejected
    assert t.score.tolist() == [1, 0.75, 0.5, 0.5, 0.25, 0.0, 0.0, 0.1]
    h = fit(t, model="logistic", reps=0).agents["a"]
    assert h.identifiable and 0 < h.t50 < 10


@pytest.mark.parametrize("content, message", [
    ("agent,task,length,success\na,t1,3.5,1\na,t2,abc,0\n", "line 3: field 'length': 'abc' is not a number"),
    ("agent,task,length,success\na,t1,-2,1\n", "line 2: field 'length': length must be > 0"),
    ("agent,task,length,success\na,t1,2,maybe\n", "line 2: field 'success': 'maybe' is not 0/1"),
    ("agent,task,length,score\na,t1,2,1.5\n", "line 2: field 'score': score must be in [0, 1]"),
    ("agent,length,success\na,2,1\n", "line 2: missing field 'task'"),
    ("agent,task,length,success,failure\na,t,2,0,timeout\n", "line 2: field 'failure': unknown kind 'timeout'"),
    ("agent,task,family,length,success\na,t1,f1,2,1\na,t1,f2,2,0\n", "task 't1' is in two families"),
])
def test_bad_input_names_file_line_and_field(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(TableError) as exc:
        load_table(p)
    assert message in str(exc.value) and "bad.csv" in str(exc.value)


def test_cli_reports_bad_input_and_bad_options(tmp_path: Path, capsys) -> None:
    p = _write_csv(tmp_path / "ok.csv", [{"agent": "a", "task": "t", "length": 1, "success": 1}])
    assert main(["analyze", str(tmp_path / "missing.csv")]) == 1
    assert "no such file" in capsys.readouterr().out
    assert main(["analyze", str(p), "--fit", "exponential", "--l2", "0.1"]) == 1
    assert "logistic fit only" in capsys.readouterr().out
    assert main(["analyze", str(p), "--weights", "nope"]) == 1
    assert "no numeric column 'nope'" in capsys.readouterr().out


def test_run_folders_map_onto_the_table_and_exclusions_follow_the_counting_rule(tmp_path: Path) -> None:
    run = write_run(tmp_path / "agentA", t50=6.58, infra_every=29, seed=0)
    t = load_table(run)
    assert t.unit == "subtasks" and set(t.agents) == {"agentA"}
    assert t.family[0].startswith("retail_orders:") and ">" in t.family[-1]
    assert (t.failure == "infra").sum() > 0 and not t.counted[t.failure == "infra"].any()
    # One rule, from core: only successes and agent failures count.
    assert [counts_for_rate(k) for k in (None, "agent", "infra", "user_sim", "judge", "harness", "unscored")] == \
        [True, True, False, False, False, False, False]
    res = fit(t, model="exponential", reps=200).agents["agentA"]
    assert res.n == int(t.counted.sum()) and res.excluded == int((~t.counted).sum())
    assert res.ci[0] < 6.58 < res.ci[1]
    # ``toolzoo analyze`` on a run folder: the report carries the trajectory viewer.
    assert main(["analyze", str(run), "--fit", "exponential", "--reps", "50", "--out", str(tmp_path / "o")]) == 0
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'id="episodes-data"' in html and "T50 (subtasks)" in html


def test_excluded_kinds_do_not_count_whatever_their_success_flag(tmp_path: Path) -> None:
    rows = [{"agent": "a", "task": f"t{i}", "length": 2 ** (i % 5), "success": s, "failure": k}
            for i, (s, k) in enumerate([(1, ""), (0, "agent"), (1, "judge"), (1, "infra"), (0, "harness"),
                                        (1, ""), (0, "agent"), (0, ""), (1, "user_sim"), (0, "agent")])]
    p = _write_csv(tmp_path / "k.csv", rows)
    t = load_table(p)
    assert t.counted.tolist() == [True, True, False, False, False, True, True, True, False, True]
    assert fit(t, model="exponential", reps=0).agents["a"].n == 6


def test_weights_are_scale_free() -> None:
    """Point estimate and both intervals are the same for w and 1000 w (and w summing to 1)."""
    rng = np.random.default_rng(4)
    n = 400
    L = np.exp(rng.uniform(0, 5, n))
    y = (rng.random(n) < 2.0 ** (-L / 20)).astype(float)
    w = rng.uniform(0.2, 3, n)
    res = []
    for scale in (1.0, 1000.0, 1 / w.sum()):
        t = Table.from_arrays("a", [f"t{i}" for i in range(n)], L, y, weight=w * scale, unit="minutes")
        h = fit(t, model="exponential", reps=100, seed=1).agents["a"]
        res.append((h.t50, *h.ci, *h.ci_profile))
    np.testing.assert_allclose(res[0], res[1], rtol=1e-9)
    np.testing.assert_allclose(res[0], res[2], rtol=1e-9)
    # Kish scaling: equal weights give the unweighted profile interval.
    t1 = Table.from_arrays("a", [f"t{i}" for i in range(n)], L, y)
    t2 = Table.from_arrays("a", [f"t{i}" for i in range(n)], L, y, weight=np.full(n, 0.01))
    assert fit(t1, model="weibull", reps=0).agents["a"].ci_profile == pytest.approx(
        fit(t2, model="weibull", reps=0).agents["a"].ci_profile, rel=1e-6)


@pytest.mark.parametrize("unit_scale", [0.01 / 4, 1.0, 100_000 / 400])
@pytest.mark.parametrize("model", ["exponential", "weibull", "logistic"])
def test_fits_are_stable_from_001_to_100000_without_warnings(unit_scale: float, model: str) -> None:
    """The same data in three units (lengths 0.0025..0.25, 1..100, 250..25,000) and a data set
    spanning 0.01..100,000: T50 scales exactly, nothing warns."""
    rng = np.random.default_rng(2)
    n = 600
    L = np.exp(rng.uniform(0, math.log(100), n))
    y = (rng.random(n) < 2.0 ** (-L / 12)).astype(float)
    base = Table.from_arrays("a", [f"t{i % 150}" for i in range(n)], L, y)
    scaled = Table.from_arrays("a", [f"t{i % 150}" for i in range(n)], L * unit_scale, y)
    wide_L = np.exp(rng.uniform(math.log(0.01), math.log(100_000), n))
    wide = Table.from_arrays("a", [f"t{i}" for i in range(n)], wide_L,
                             (rng.random(n) < 2.0 ** (-wide_L / 30)).astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = fit(base, model=model, reps=50).agents["a"]
        b = fit(scaled, model=model, reps=50).agents["a"]
        c = fit(wide, model=model, reps=50).agents["a"]
    assert b.t50 == pytest.approx(a.t50 * unit_scale, rel=1e-7)
    assert b.ci_profile[0] == pytest.approx(a.ci_profile[0] * unit_scale, rel=1e-6)
    assert c.identifiable and 3 < c.t50 < 300


@st.composite
def tables(draw) -> Table:
    n = draw(st.integers(1, 40))
    L = draw(st.lists(st.floats(0.01, 100_000), min_size=n, max_size=n))
    y = draw(st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=n, max_size=n))
    w = draw(st.lists(st.floats(0.001, 1000), min_size=n, max_size=n))
    tasks = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    return Table.from_arrays("a", [f"t{k}" for k in tasks], L, y, family=[f"f{k % 3}" for k in tasks],
                             weight=w)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from(["exponential", "weibull", "logistic"]))
def test_fit_never_crashes_or_warns_and_says_why(t: Table, model: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = fit(t, model=model, reps=20).agents["a"]
    if h.identifiable:
        assert h.t50 is not None and math.isfinite(h.t50) and h.t50 > 0
        lo, hi = h.ci
        assert (lo is None or lo >= 0) and (hi is None or hi > 0)  # 0: unbounded below
        assert h.t80 is None or h.t80 < h.t50 * (1 + 1e-9)
    else:
        assert h.reason and h.t50 is None
    if (t.score == 1).all():
        assert not h.identifiable and "never fails" in h.reason
