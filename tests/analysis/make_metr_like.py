"""Write tests/analysis/data/metr_like_runs.jsonl: a *generated* per-run data set of the METR
shape (agents x tasks, each task with a human time estimate in minutes, a family and METR-style
weights). Not METR's data: tasks, families, times and outcomes are all drawn here.

Run from the repository root: ``python -m tests.analysis.make_metr_like``. The committed file is
what the tests read; re-running with the same seed reproduces it byte for byte.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "data" / "metr_like_runs.jsonl"
AGENTS = {"agent-2023": 4.0, "agent-2024a": 15.0, "agent-2024b": 40.0, "agent-2025": 110.0}


def generate(seed: int = 20251203) -> list[dict]:
    rng = np.random.default_rng(seed)
    # 83 tasks in 30 families of uneven size (some singletons, a few big ones).
    sizes = [1] * 14 + [2] * 6 + [3] * 4 + [5, 6, 7, 8, 9, 10]
    assert sum(sizes) == 83 and len(sizes) == 30
    tasks = []
    for f, k in enumerate(sizes):
        fam_minutes = math.exp(rng.uniform(math.log(0.05), math.log(1500)))
        fam_effect = rng.normal(0, 0.6)
        for j in range(k):
            minutes = float(np.round(fam_minutes * math.exp(rng.normal(0, 0.8)), 3))
            tasks.append({"task_id": f"fam{f:02d}/task{j}", "task_family": f"fam{f:02d}",
                          "human_minutes": max(minutes, 0.01), "difficulty": fam_effect + rng.normal(0, 0.7)})
    rows = []
    for alias, horizon in AGENTS.items():
        for t in tasks:
            runs = int(rng.choice([1, 2, 3, 6, 8], p=[0.15, 0.15, 0.2, 0.3, 0.2]))
            eta = 0.9 * (math.log2(horizon) - math.log2(t["human_minutes"])) - t["difficulty"]
            p = 1 / (1 + math.exp(-eta))
            for r in range(runs):
                cont = float(np.clip(rng.beta(4 * p + 0.2, 4 * (1 - p) + 0.2), 0, 1))
                rows.append({"alias": alias, "task_id": t["task_id"], "task_family": t["task_family"],
                             "human_minutes": t["human_minutes"], "run_id": f"{alias}/{t['task_id']}/{r}",
                             "score_binarized": int(rng.random() < p), "score_cont": round(cont, 4)})
    _add_weights(rows)
    return rows


def _add_weights(rows: list[dict]) -> None:
    """METR's two weight columns, per agent: 1/(runs of the task) and that over sqrt(tasks in
    the family), each normalised to sum to 1 (written out plainly, independently of toolzoo)."""
    for alias in {r["alias"] for r in rows}:
        mine = [r for r in rows if r["alias"] == alias]
        runs = Counter(r["task_id"] for r in mine)
        fam_tasks = Counter(fam for fam, _ in {(r["task_family"], r["task_id"]) for r in mine})
        eq = [1 / runs[r["task_id"]] for r in mine]
        inv = [e / math.sqrt(fam_tasks[r["task_family"]]) for e, r in zip(eq, mine)]
        for r, e, i in zip(mine, eq, inv):
            r["equal_task_weight"] = e / sum(eq)
            r["invsqrt_task_weight"] = i / sum(inv)


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in generate()))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
