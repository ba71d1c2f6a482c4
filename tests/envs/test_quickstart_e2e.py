"""End to end: `toolzoo run examples/quickstart.yaml` (noisy_oracle p=0.1 at lengths 1-16)
writes trajectories, a report and a half-life whose interval contains the truth, 6.58."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_reports_the_true_half_life(tmp_path):
    out = tmp_path / "quickstart"
    done = subprocess.run([sys.executable, "-m", "toolzoo.cli", "run", str(ROOT / "examples/quickstart.yaml"),
                           "--output", str(out), "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "success by length" in done.stdout and "half-life T50" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    truth = math.log(2) / -math.log(0.9)
    hl = summary["half_life"]
    assert hl["ci"][0] <= truth <= hl["ci"][1], hl
    assert abs(hl["t50"] - truth) / truth < 0.15
    assert hl["model"] == "exponential"
    assert sum(r["episodes"] for r in summary["by_length"].values()) == 400
    for name in ("report.html", "success_vs_length.png", "log_survival.png", "pass_k.png", "trajectories.jsonl"):
        assert (out / name).stat().st_size > 0
