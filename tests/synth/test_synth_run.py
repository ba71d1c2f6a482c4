"""A run over offline-synthesized domains with the noisy oracle gives a sensible half-life:
success (1-p)^L, so T50 = ln 0.5 / ln 0.9 = 6.58 subtasks at p = 0.1."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from toolzoo.analysis.report import write_report
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.runner import Runner
from toolzoo.synth.offline import synthesize_offline

T50 = math.log(0.5) / math.log(0.9)


@pytest.mark.slow
def test_noisy_oracle_half_life_on_synthesized_domains(tmp_path: Path) -> None:
    zoo = tmp_path / "zoo"
    report = synthesize_offline(5, seed=11, out_dir=zoo, workers=1, lengths=[1, 4, 8], seeds=[0])
    assert report.accepted == 5
    domains = sorted(str(p) for p in zoo.glob("*.yaml"))
    config = RunConfig(run="synth_noisy", domains=domains, lengths=[1, 2, 4, 8], tasks_per_length=10, trials=2,
                       seed=0, agent={"kind": "noisy_oracle", "p": 0.1, "seed": 0}, concurrency=8,
                       output=str(tmp_path / "run"))
    summary = asyncio.run(Runner(config).run(progress=False))
    assert summary["episodes"] == 5 * 4 * 10 * 2
    assert summary["infra_errors"] == 0 and summary["user_sim_errors"] == 0
    rates = [summary["by_length"][str(L)]["rate"] for L in (1, 2, 4, 8)]
    assert rates[0] > rates[-1]  # success decays with length
    res = write_report([tmp_path / "run"], reps=200)
    hl = res["half_life"]
    lo, hi = hl["ci"]
    assert hl["identifiable"] and lo <= T50 <= (hi if hi is not None else math.inf), hl
    assert 3.5 < hl["t50"] < 12
