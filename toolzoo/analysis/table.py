"""Any success data as one table: agent, task, family, length, score, weight.

Sources: CSV and JSONL files with one run per row, and toolzoo run folders (a folder holding
``trajectories.jsonl``), mapped onto the same columns. Column names (first match wins):

=========  ===========================================  ==========================================
column     accepted names                               meaning
=========  ===========================================  ==========================================
agent      agent, alias, model                          who ran it (fits are per agent)
task       task, task_id                                task identity (the bootstrap's unit)
family     family, task_family (optional)               task family (default: the task itself)
length     length, human_minutes                        float > 0, in ``unit``
success    success, score_binarized                     0/1 (or true/false)
score      score, score_cont                            in [0, 1], used when there is no success
weight     weight (optional; any numeric column can     per-run weight
           be named with ``weights=``)
failure    failure (optional)                           failure kind; excluded kinds do not count
=========  ===========================================  ==========================================

A toolzoo run folder gives: agent = the folder's name, task = the generated task id, family =
domain + template chain, length = subtasks (unit "subtasks"), success = the outcome, failure =
the outcome's failure kind; every row keeps its trajectory for the report's viewer.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolzoo.analysis.data import FAILURE_KINDS, counted_kinds, family_of

ALIASES: dict[str, tuple[str, ...]] = {
    "agent": ("agent", "alias", "model"),
    "task": ("task", "task_id"),
    "family": ("family", "task_family"),
    "length": ("length", "human_minutes"),
    "success": ("success", "score_binarized"),
    "score": ("score", "score_cont"),
    "weight": ("weight",),
    "failure": ("failure",),
}
TRUE, FALSE = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}


class TableError(ValueError):
    """Bad input data; the message names the file, line and field."""


@dataclass
class Table:
    """One row per run. Only rows with ``counted`` True enter rates and fits."""

    agent: np.ndarray  # object (str)
    task: np.ndarray  # object (str)
    family: np.ndarray  # object (str)
    length: np.ndarray  # float > 0
    score: np.ndarray  # float in [0, 1] (success is 0/1)
    weight: np.ndarray  # float >= 0 (1 when the data has none)
    failure: np.ndarray  # object: None or a failure kind
    unit: str = "units"
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # every other numeric column
    episodes: list[dict[str, Any] | None] = field(default_factory=list)  # viewer payloads
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.length.shape[0])

    @property
    def counted(self) -> np.ndarray:
        return counted_kinds(self.failure)

    @property
    def agents(self) -> list[str]:
        return list(dict.fromkeys(self.agent.tolist()))

    def subset(self, mask: np.ndarray) -> Table:
        idx = np.flatnonzero(mask)
        return Table(agent=self.agent[idx], task=self.task[idx], family=self.family[idx],
                     length=self.length[idx], score=self.score[idx], weight=self.weight[idx],
                     failure=self.failure[idx], unit=self.unit,
                     columns={k: v[idx] for k, v in self.columns.items()},
                     episodes=[self.episodes[i] for i in idx] if self.episodes else [],
                     sources=self.sources)

    def column(self, name: str) -> np.ndarray:
        """A numeric column by name (``weight`` and the other numeric columns of the source)."""
        if name == "weight":
            return self.weight
        if name not in self.columns:
            have = ", ".join(sorted(["weight", *self.columns])) or "none"
            raise TableError(f"no numeric column {name!r} in {', '.join(self.sources)} (numeric columns: {have})")
        return self.columns[name]

    @classmethod
    def from_arrays(cls, agent, task, length, score, family=None, weight=None, failure=None,
                    unit: str = "units") -> Table:
        n = len(length)
        task = np.array([str(t) for t in task], dtype=object)
        t = cls(
            agent=np.array([str(a) for a in (agent if not isinstance(agent, str) else [agent] * n)],
                           dtype=object),
            task=task,
            family=task.copy() if family is None else np.array([str(f) for f in family], dtype=object),
            length=np.asarray(length, float), score=np.asarray(score, float),
            weight=np.ones(n) if weight is None else np.asarray(weight, float),
            failure=np.array([None] * n if failure is None else list(failure), dtype=object),
            unit=unit, sources=["<arrays>"],
        )
        _validate(t, "<arrays>")
        return t


def _validate(t: Table, where: str) -> None:
    bad = np.flatnonzero(~(np.isfinite(t.length) & (t.length > 0)))
    if bad.size:
        raise TableError(f"{where}: row {bad[0] + 1}: field 'length': must be a finite number > 0, got {t.length[bad[0]]}")
    bad = np.flatnonzero(~((t.score >= 0) & (t.score <= 1)))
    if bad.size:
        raise TableError(f"{where}: row {bad[0] + 1}: field 'score': must be in [0, 1], got {t.score[bad[0]]}")
    bad = np.flatnonzero(~(np.isfinite(t.weight) & (t.weight >= 0)))
    if bad.size:
        raise TableError(f"{where}: row {bad[0] + 1}: field 'weight': must be a finite number >= 0")


def _pick(row: dict[str, Any], key: str) -> tuple[str | None, Any]:
    for name in ALIASES[key]:
        if name in row and row[name] not in (None, ""):
            return name, row[name]
    return None, None


def _number(value: Any, where: str, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TableError(f"{where}: field {name!r}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise TableError(f"{where}: field {name!r}: {value!r} is not finite")
    return x


def _success(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool):
        return float(value)
    s = str(value).strip().lower()
    if s in TRUE:
        return 1.0
    if s in FALSE:
        return 0.0
    raise TableError(f"{where}: field {name!r}: {value!r} is not 0/1 (use 'score' for fractional scores)")


def _rows_to_table(rows: list[tuple[str, dict[str, Any]]], source: str, unit: str | None) -> Table:
    """``rows`` are (location for messages, record)."""
    if not rows:
        raise TableError(f"{source}: no rows")
    agent, task, family, length, score, weight, failure = [], [], [], [], [], [], []
    numeric: dict[str, list[float]] = {}
    used = {n for names in ALIASES.values() for n in names}
    length_names = set()
    for where, row in rows:
        vals = {}
        for key in ("agent", "task", "length"):
            name, v = _pick(row, key)
            if name is None:
                raise TableError(f"{where}: missing field {key!r} (accepted: {', '.join(ALIASES[key])})")
            vals[key] = (name, v)
        agent.append(str(vals["agent"][1]))
        task.append(str(vals["task"][1]))
        fname, fam = _pick(row, "family")
        family.append(str(fam) if fname else str(vals["task"][1]))
        lname, lv = vals["length"]
        length_names.add(lname)
        x = _number(lv, where, lname)
        if not x > 0:
            raise TableError(f"{where}: field {lname!r}: length must be > 0, got {lv!r}")
        length.append(x)
        sname, sv = _pick(row, "success")
        if sname is not None:
            score.append(_success(sv, where, sname))
        else:
            cname, cv = _pick(row, "score")
            if cname is None:
                raise TableError(f"{where}: missing field 'success' (0/1) or 'score' (0-1)")
            y = _number(cv, where, cname)
            if not 0 <= y <= 1:
                raise TableError(f"{where}: field {cname!r}: score must be in [0, 1], got {cv!r}")
            score.append(y)
        wname, wv = _pick(row, "weight")
        w = 1.0 if wname is None else _number(wv, where, wname)
        if w < 0:
            raise TableError(f"{where}: field {wname!r}: weight must be >= 0, got {wv!r}")
        weight.append(w)
        _, fk = _pick(row, "failure")
        fk = None if fk in (None, "", "none", "None") else str(fk)
        if fk is not None and fk not in FAILURE_KINDS:
            raise TableError(f"{where}: field 'failure': unknown kind {fk!r} (one of {', '.join(FAILURE_KINDS)})")
        failure.append(fk)
        for k, v in row.items():
            if k in used or isinstance(v, bool):
                continue
            try:
                fv = float(v)
            except (TypeError, ValueError):
                continue
            numeric.setdefault(k, []).append(fv)
    n = len(length)
    columns = {k: np.asarray(v) for k, v in numeric.items() if len(v) == n}
    if unit is None:
        unit = "minutes" if length_names == {"human_minutes"} else "units"
    t = Table(agent=np.array(agent, object), task=np.array(task, object),
              family=np.array(family, object), length=np.asarray(length), score=np.asarray(score),
              weight=np.asarray(weight), failure=np.array(failure, object), unit=unit,
              columns=columns, episodes=[None] * n, sources=[source])
    return t


def _read_csv(path: Path, unit: str | None) -> Table:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [(f"{path} line {i}", r) for i, r in enumerate(reader, start=2)]
    return _rows_to_table(rows, str(path), unit)


def _read_jsonl(path: Path, unit: str | None) -> Table:
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TableError(f"{path} line {i}: not JSON: {exc.msg}") from None
        if not isinstance(rec, dict):
            raise TableError(f"{path} line {i}: expected a JSON object per line")
        rows.append((f"{path} line {i}", rec))
    return _rows_to_table(rows, str(path), unit)


def _read_run(run_dir: Path) -> Table:
    from toolzoo.analysis.viewer import episode_payload
    from toolzoo.core import Trajectory

    path = run_dir / "trajectories.jsonl"
    name = run_dir.resolve().name or str(run_dir)
    agent, task, family, length, score, failure, payload = [], [], [], [], [], [], []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            t = Trajectory.model_validate_json(line)
        except ValueError as exc:
            raise TableError(f"{path} line {i}: not a trajectory: {str(exc).splitlines()[0]}") from None
        o = t.outcome
        agent.append(name)
        task.append(t.task.id)
        family.append(family_of(t.task))
        length.append(float(t.task.length))
        score.append(float(bool(o.success)) if o is not None else 0.0)
        failure.append("unscored" if o is None else (None if o.failure is None else str(o.failure)))
        payload.append(episode_payload(t, run=name))
    if not length:
        raise TableError(f"{path}: no trajectories")
    return Table(agent=np.array(agent, object), task=np.array(task, object),
                 family=np.array(family, object), length=np.asarray(length), score=np.asarray(score),
                 weight=np.ones(len(length)), failure=np.array(failure, object), unit="subtasks",
                 episodes=payload, sources=[str(run_dir)])


def read_one(path: str | Path, length_unit: str | None = None) -> Table:
    p = Path(path)
    if p.is_dir():
        if not (p / "trajectories.jsonl").exists():
            raise TableError(f"{p}: a folder must be a toolzoo run (no trajectories.jsonl)")
        t = _read_run(p)
        if length_unit:
            t.unit = length_unit
        return t
    if not p.exists():
        raise TableError(f"{p}: no such file")
    if p.suffix.lower() == ".csv":
        return _read_csv(p, length_unit)
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(p, length_unit)
    raise TableError(f"{p}: unknown format (expected .csv, .jsonl or a run folder)")


def load_table(paths: str | Path | Sequence[str | Path], length_unit: str | None = None) -> Table:
    """Read and concatenate CSV, JSONL and run folders into one :class:`Table`.

    ``length_unit`` names the unit of every length (it labels output, it converts nothing);
    without it each source's own unit is used, and sources that disagree are an error.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    tables = [read_one(p, length_unit) for p in paths]
    if not tables:
        raise TableError("no input files")
    units = {t.unit for t in tables}
    if len(units) > 1:
        raise TableError(f"inputs disagree on the length unit ({', '.join(sorted(units))}): "
                         "pass --length-unit to say what the lengths are in")
    shared = set.intersection(*(set(t.columns) for t in tables))
    out = Table(
        agent=np.concatenate([t.agent for t in tables]), task=np.concatenate([t.task for t in tables]),
        family=np.concatenate([t.family for t in tables]),
        length=np.concatenate([t.length for t in tables]), score=np.concatenate([t.score for t in tables]),
        weight=np.concatenate([t.weight for t in tables]),
        failure=np.concatenate([t.failure for t in tables]), unit=tables[0].unit,
        columns={k: np.concatenate([t.columns[k] for t in tables]) for k in shared},
        episodes=[e for t in tables for e in (t.episodes or [None] * len(t))],
        sources=[s for t in tables for s in t.sources],
    )
    _check_nesting(out)
    return out


def _check_nesting(t: Table) -> None:
    seen: dict[str, str] = {}
    for task, fam in zip(t.task.tolist(), t.family.tolist()):
        if seen.setdefault(task, fam) != fam:
            raise TableError(f"{', '.join(t.sources)}: task {task!r} is in two families "
                             f"({seen[task]!r} and {fam!r}): families must group tasks")


def task_weights(t: Table, scheme: str) -> np.ndarray:
    """Per-row weights by scheme, per agent, normalised to sum to 1 for each agent.

    * ``equal_task``: 1 / (runs of the task)  -- every task counts the same;
    * ``invsqrt`` (METR): 1 / (runs of the task * sqrt(tasks in the family)) -- a family of n
      tasks counts sqrt(n) times a single task;
    * ``none``: every run counts the same.
    Counts are over the agent's counted rows.
    """
    w = np.zeros(len(t))
    ok = t.counted
    for a in t.agents:
        m = ok & (t.agent == a)
        idx = np.flatnonzero(m)
        if idx.size == 0:
            continue
        tasks, tinv, runs = np.unique(t.task[idx].astype(str), return_inverse=True, return_counts=True)
        tinv = tinv.reshape(-1)
        if scheme == "none":
            wi = np.ones(idx.size)
        elif scheme in ("equal_task", "invsqrt"):
            wi = 1.0 / runs[tinv]
            if scheme == "invsqrt":
                fam_of_task = np.empty(tasks.size, object)
                fam_of_task[tinv] = t.family[idx]
                fams, finv, fsize = np.unique(fam_of_task.astype(str), return_inverse=True,
                                              return_counts=True)
                wi = wi / np.sqrt(fsize[finv.reshape(-1)][tinv])
        else:
            raise TableError(f"unknown weighting {scheme!r} (none, equal_task, invsqrt)")
        w[idx] = wi / wi.sum()
    return w
