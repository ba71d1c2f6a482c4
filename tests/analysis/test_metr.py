"""METR's estimator on the shipped METR-shaped data set (generated, tests/analysis/data), checked
against an independent implementation: scikit-learn's LogisticRegression (test-only dependency)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from toolzoo.analysis import fit, load_table
from toolzoo.analysis.table import task_weights
from toolzoo.cli import main

DATA = Path(__file__).parent / "data" / "metr_like_runs.jsonl"
sklearn_lm = pytest.importorskip("sklearn.linear_model", reason="scikit-learn is the test-only reference (dev extra)")


def _rows() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines()]


def _sklearn_t50(rows: list[dict], agent: str, q: float = 0.5) -> float:
    mine = [r for r in rows if r["alias"] == agent]
    x = np.log2([r["human_minutes"] for r in mine])[:, None]
    y = np.array([r["score_binarized"] for r in mine])
    w = np.array([r["invsqrt_task_weight"] for r in mine])
    # C = 1 / regularization (0.1), as METR calls it; a tight tolerance so that the reference is
    # the optimum itself, not sklearn's default stopping point (tol=1e-4).
    m = sklearn_lm.LogisticRegression(C=1 / 0.1, tol=1e-12, max_iter=100_000).fit(x, y, sample_weight=w)
    return 2.0 ** ((math.log(q / (1 - q)) - m.intercept_[0]) / m.coef_[0][0])


def test_data_set_has_the_metr_shape() -> None:
    rows = _rows()
    tasks = {r["task_id"] for r in rows}
    per_task_minutes = {r["task_id"]: r["human_minutes"] for r in rows}
    assert len(tasks) == 83 and len({r["task_family"] for r in rows}) == 30
    # Most tasks have their own length: a length-stratified bootstrap would never resample them.
    counts = np.unique(list(per_task_minutes.values()), return_counts=True)[1]
    assert (counts == 1).sum() >= 49
    assert min(per_task_minutes.values()) < 0.1 and max(per_task_minutes.values()) > 1000


def test_invsqrt_scheme_equals_the_data_sets_own_weights() -> None:
    t = load_table(DATA)
    assert t.unit == "minutes"
    np.testing.assert_allclose(task_weights(t, "invsqrt"), t.column("invsqrt_task_weight"), rtol=1e-12)
    np.testing.assert_allclose(task_weights(t, "equal_task"), t.column("equal_task_weight"), rtol=1e-12)


def test_metr_logistic_equals_sklearn_to_1e6(tmp_path: Path) -> None:
    """``toolzoo analyze --metr`` (logistic, L2 0.1 on the slope, inverse-sqrt weights) and the
    scheme computed by toolzoo, both against sklearn fed the data set's own weight column."""
    rows = _rows()
    out = tmp_path / "metr.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["analyze", str(DATA), "--metr", "--json", str(out), "--reps", "50"]) == 0
    res = json.loads(out.read_text())
    assert res["unit"] == "minutes" and res["l2"] == 0.1 and res["weights"] == "invsqrt"
    agents = res["agents"]
    assert set(agents) == {"agent-2023", "agent-2024a", "agent-2024b", "agent-2025"}
    for name, a in agents.items():
        ref = _sklearn_t50(rows, name)
        assert a["model"] == "logistic" and a["unit"] == "minutes"
        assert abs(a["t50"] / ref - 1) < 1e-6, (name, a["t50"], ref)
        assert abs(a["t80"] / _sklearn_t50(rows, name, 0.8) - 1) < 1e-6
        assert a["ci"][0] < a["t50"] < a["ci"][1] and a["n"] == sum(r["alias"] == name for r in rows)
    # The same through the Python API with the column instead of the scheme.
    api = fit(load_table(DATA), model="logistic", l2=0.1, weights="invsqrt_task_weight", reps=0)
    for name, h in api.agents.items():
        assert abs(h.t50 / agents[name]["t50"] - 1) < 1e-9


def test_penalty_is_what_moves_the_logistic_fit() -> None:
    """Unpenalised (plain MLE) and METR's penalised fit differ on these data; sklearn with a
    vanishing penalty agrees with the unpenalised one."""
    rows = _rows()
    t = load_table(DATA)
    plain = fit(t, model="logistic", weights="invsqrt", reps=0).agents
    metr = fit(t, model="logistic", l2=0.1, weights="invsqrt", reps=0).agents
    diffs = [abs(plain[a].t50 / metr[a].t50 - 1) for a in plain]
    assert max(diffs) > 0.02
    mine = [r for r in rows if r["alias"] == "agent-2024a"]
    m = sklearn_lm.LogisticRegression(C=1e12, tol=1e-12, max_iter=100_000).fit(
        np.log2([r["human_minutes"] for r in mine])[:, None], [r["score_binarized"] for r in mine],
        sample_weight=[r["invsqrt_task_weight"] for r in mine])
    assert abs(2 ** (-m.intercept_[0] / m.coef_[0][0]) / plain["agent-2024a"].t50 - 1) < 1e-5


def test_metr_fit_is_unit_equivariant() -> None:
    """The penalty is on the slope per doubling, so minutes -> seconds multiplies T50 by 60."""
    t = load_table(DATA)
    a = fit(t, model="logistic", l2=0.1, weights="invsqrt", reps=0).agents
    t.length = t.length * 60
    b = fit(t, model="logistic", l2=0.1, weights="invsqrt", reps=0).agents
    for k in a:
        assert b[k].t50 == pytest.approx(60 * a[k].t50, rel=1e-9)


def test_shipped_data_set_is_what_the_generator_writes() -> None:
    from tests.analysis.make_metr_like import generate

    expected = "".join(json.dumps(r, sort_keys=True) + "\n" for r in generate())
    assert DATA.read_text() == expected
