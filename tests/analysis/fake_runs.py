"""Write fake run directories (trajectories.jsonl of real Trajectory objects) for report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolzoo.analysis.simulate import first_failure
from toolzoo.core import Outcome, SubtaskInstance, Task, Trajectory


TEMPLATES = ("status_of", "cancel_order", "refund_item", "change_address")


def write_run(run_dir: Path, t50: float, lengths=(1, 2, 4, 8, 16), tasks_per_length: int = 25,
              trials: int = 4, seed: int = 0, kappa: float = 1.0, infra_every: int = 0,
              endpoint_only: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    lines, ep = [], 0
    for L in lengths:
        for j in range(tasks_per_length):
            # Template chains vary (as generated tasks' do), so families are many, not one per length.
            chain = np.random.default_rng([L, j]).choice(TEMPLATES, size=L)  # same task id, same task
            task = Task(id=f"t{L}-{j}", domain="retail_orders", seed=j, length=L,
                        subtasks=[SubtaskInstance(template=str(tp), ask=f"q{i}") for i, tp in enumerate(chain)])
            for trial in range(trials):
                ep += 1
                t = int(first_failure(rng, 1, t50, kappa)[0])
                if infra_every and ep % infra_every == 0:
                    out = Outcome(success=False, failure="infra", reason="sandbox died")
                elif t > L:
                    out = Outcome(success=True, reward=1.0, subtasks_completed=L)
                else:
                    out = Outcome(success=False, failure="agent", subtasks_completed=t - 1,
                                  first_failed=None if endpoint_only else t - 1)
                traj = Trajectory(episode_id=f"e{ep}", task=task, trial=trial, outcome=out)
                lines.append(traj.model_dump_json())
    (run_dir / "trajectories.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir
