"""Judge audit: where verifiable truth exists, how well do LLM verdicts and rubric scores agree
with it?

Truth is the verifiable verdict of the episode (``outcome.success`` of a judged episode: one
whose failure is None or ``agent``, or ``judge`` with a stored verifiable score). Predictions:
each LLM-judged item's verdict (pass = predicts success) and each rubric's aggregate score
thresholded (score >= threshold predicts success). Reported per rubric: the aggregate, all LLM
items pooled, and each LLM item id, as precision, recall and Cohen's κ with the 2x2 counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel

from toolzoo.core import FailureKind, Trajectory


class Agreement(BaseModel):
    tp: int = 0  # judge pass, truth success
    fp: int = 0  # judge pass, truth failure
    fn: int = 0  # judge fail, truth success
    tn: int = 0  # judge fail, truth failure
    n: int = 0
    precision: float | None = None  # of the judge's passes, how many truly succeeded
    recall: float | None = None  # of the true successes, how many the judge passed
    kappa: float | None = None  # Cohen's κ: agreement beyond chance (None when undefined)


def cohen_kappa(tp: int, fp: int, fn: int, tn: int) -> float | None:
    n = tp + fp + fn + tn
    if n == 0:
        return None
    po = (tp + tn) / n
    pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    if pe >= 1.0:  # both raters constant and equal: κ is 0/0
        return None
    return (po - pe) / (1.0 - pe)


def agreement(pairs: Iterable[tuple[bool, bool]]) -> Agreement:
    """From (judge says pass, truth is success) pairs."""
    a = Agreement()
    for pred, truth in pairs:
        if pred and truth:
            a.tp += 1
        elif pred:
            a.fp += 1
        elif truth:
            a.fn += 1
        else:
            a.tn += 1
    a.n = a.tp + a.fp + a.fn + a.tn
    a.precision = a.tp / (a.tp + a.fp) if a.tp + a.fp else None
    a.recall = a.tp / (a.tp + a.fn) if a.tp + a.fn else None
    a.kappa = cohen_kappa(a.tp, a.fp, a.fn, a.tn)
    return a


def _truth(traj: Trajectory) -> bool | None:
    o = traj.outcome
    if o is None or "verifiable" not in traj.scores or o.failure in (FailureKind.INFRA, FailureKind.USER_SIM, FailureKind.HARNESS):
        return None
    return bool(o.success)


def judge_audit(trajectories: Iterable[Trajectory], threshold: float = 0.5) -> dict:
    """``{"truth": ..., "threshold": t, "rubrics": {name: {"aggregate": A, "llm_items": A,
    "items": {id: A}}}}`` with A an :class:`Agreement` as a dict; {} when nothing to audit."""
    agg: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    pooled: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    items: dict[str, dict[str, list[tuple[bool, bool]]]] = defaultdict(lambda: defaultdict(list))
    for traj in trajectories:
        truth = _truth(traj)
        if truth is None:
            continue
        for name, score in traj.scores.items():
            if name == "verifiable":
                continue
            agg[name].append((score.value >= threshold, truth))
            for it in score.items:
                if it.reason.startswith("llm:") and it.passed is not None:
                    pooled[name].append((it.passed, truth))
                    items[name][it.id].append((it.passed, truth))
    if not agg:
        return {}
    out = {}
    for name in sorted(agg):
        out[name] = {"aggregate": agreement(agg[name]).model_dump(),
                     "llm_items": agreement(pooled[name]).model_dump() if pooled[name] else None,
                     "items": {k: agreement(v).model_dump() for k, v in sorted(items[name].items())}}
    return {"truth": "verifiable success", "threshold": threshold, "rubrics": out}
