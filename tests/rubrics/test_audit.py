"""Judge audit numbers on a constructed case with known precision, recall and Cohen's κ."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolzoo.core import ItemScore, Outcome, Score, Task, Trajectory
from toolzoo.rubrics.apply import audit_table, summary_blocks
from toolzoo.rubrics.audit import agreement, cohen_kappa, judge_audit

TRUTH = [True] * 4 + [False] * 6
ITEM = [True, True, True, False, True, False, False, False, False, False]  # tp 3 fn 1 fp 1 tn 5
AGG = [0.9, 0.6, 0.5, 0.7, 0.8, 0.55, 0.49, 0.3, 0.0, 0.1]  # >= 0.5: tp 4 fn 0 fp 2 tn 4


def traj(i: int, success: bool, item: bool, agg: float, failure=None) -> Trajectory:
    task = Task(id=f"t{i}", domain="d", seed=i, length=1 + i % 2, subtasks=[])
    return Trajectory(
        episode_id=f"e{i}", task=task,
        outcome=Outcome(success=success, failure=failure if failure else (None if success else "agent")),
        scores={"verifiable": Score(value=float(success)),
                "r": Score(value=agg, items=[ItemScore(id="tone", passed=item, reason="llm: x"),
                                             ItemScore(id="calls_ok", passed=not success, reason="check: y")])})


def trajectories():
    out = [traj(i, s, it, a) for i, (s, it, a) in enumerate(zip(TRUTH, ITEM, AGG))]
    # not audited: infra failures carry no verifiable truth
    out.append(traj(99, False, True, 1.0, failure="infra"))
    return out


def test_known_numbers():
    audit = judge_audit(trajectories())
    item = audit["rubrics"]["r"]["items"]["tone"]
    assert (item["tp"], item["fp"], item["fn"], item["tn"], item["n"]) == (3, 1, 1, 5, 10)
    assert item["precision"] == pytest.approx(0.75) and item["recall"] == pytest.approx(0.75)
    assert item["kappa"] == pytest.approx((0.8 - 0.52) / 0.48)  # po 0.8, pe 0.4·0.4 + 0.6·0.6
    agg = audit["rubrics"]["r"]["aggregate"]
    assert (agg["tp"], agg["fp"], agg["fn"], agg["tn"]) == (4, 2, 0, 4)
    assert agg["precision"] == pytest.approx(4 / 6) and agg["recall"] == 1.0
    assert agg["kappa"] == pytest.approx((0.8 - 0.48) / 0.52)
    assert "calls_ok" not in audit["rubrics"]["r"]["items"]  # check items are not LLM verdicts
    assert audit["rubrics"]["r"]["llm_items"] == item


def test_threshold_moves_the_aggregate():
    agg = judge_audit(trajectories(), threshold=0.75)["rubrics"]["r"]["aggregate"]
    assert (agg["tp"], agg["fp"], agg["fn"], agg["tn"]) == (1, 1, 3, 5)


def test_kappa_edge_cases():
    assert cohen_kappa(5, 0, 0, 5) == 1.0
    assert cohen_kappa(0, 5, 5, 0) == -1.0
    assert cohen_kappa(10, 0, 0, 0) is None  # both constant: undefined
    assert cohen_kappa(0, 0, 0, 0) is None
    a = agreement([])
    assert a.n == 0 and a.precision is None and a.recall is None


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=50))
def test_kappa_bounds(pairs):
    a = agreement(pairs)
    assert a.n == len(pairs)
    if a.kappa is not None:
        assert -1.0 - 1e-9 <= a.kappa <= 1.0 + 1e-9
    for x in (a.precision, a.recall):
        assert x is None or 0.0 <= x <= 1.0


def test_summary_blocks_and_table():
    blocks = summary_blocks(trajectories())
    r = blocks["rubrics"]["r"]
    assert r["episodes"] == 11 and r["mean"] == pytest.approx((sum(AGG) + 1.0) / 11)
    assert set(r["by_length"]) == {"1", "2"}
    assert blocks["judge_audit"]["rubrics"]["r"]["aggregate"]["n"] == 10
    table = audit_table(blocks)
    assert table is not None and table.row_count == 3  # aggregate, pooled, one item
    assert audit_table({"judge_audit": {}}) is None and audit_table({}) is None
