"""``toolzoo train``'s ``sandbox:`` section (the Run format's): rollouts, oracle SFT episodes
and evaluation run on the configured tier, leasing from a warm pool when ``pool > 0``, and
nothing is left behind afterwards."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
from pathlib import Path

import pytest

from toolzoo.envs.run_config import SandboxConfig
from toolzoo.trainer.config import TrainConfig

pytestmark = [pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"),
              pytest.mark.slow, pytest.mark.timeout(300)]

DOMAIN = str(Path(__file__).parent / "data" / "tiny_shop.yaml")
TINY = {"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "num_heads": 2, "num_kv_heads": 1}
PROCESS = {"backend": "process", "transport": "mcp", "pool": 2,
           "limits": {"wall_time_s": 300, "memory_mb": 768, "pids": 128}}


@pytest.fixture(autouse=True)
def _private_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLZOO_STATE_DIR", str(tmp_path / "state"))  # counts only these sandboxes


def _left(run_id: str) -> list:
    from toolzoo.sandbox.reaper import entries

    return entries(run_id)


def test_rollouts_lease_warm_process_sandboxes_and_leave_nothing():
    from toolzoo.agents.scripted import OracleAgent
    from toolzoo.trainer.episodes import Tasks, run_many

    pool = Tasks()
    tasks = pool.draw([DOMAIN], [1], 8, 0)
    trajs = asyncio.run(run_many(tasks, OracleAgent, concurrency=2, sources=pool.sources,
                                 sandbox=SandboxConfig.model_validate(PROCESS)))
    assert [t.outcome.success for t in trajs] == [True] * 8
    leases = [t.timing.lease_s for t in trajs]
    assert max(leases[:2]) > 0.05 and statistics.median(leases[4:]) <= 0.01, leases  # cold first, then warm
    assert _left("train") == []  # the call's pool is drained at its end


def test_train_evaluates_on_the_configured_tier(tmp_path):
    from toolzoo.trainer.loop import train

    out = tmp_path / "run"
    cfg = TrainConfig.model_validate(dict(
        train="t", algorithm="sft", model={"tiny": TINY}, domains=[DOMAIN], lengths=[1], steps=1, threads=1,
        sft={"episodes": 4, "batch_size": 4}, eval={"lengths": [1], "tasks_per_length": 4},
        rollout={"max_new_tokens": 8}, sandbox=PROCESS, output=str(out)))
    summary = train(cfg, progress=False)
    rows = [json.loads(line) for line in (out / "eval" / "trajectories.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and summary["eval"]["by_length"]["1"]["n"] == 4
    assert all(r["outcome"]["failure"] != "infra" for r in rows if r["outcome"])  # they ran there
    assert (tmp_path / "state" / "uids").is_dir()  # process sandboxes claimed uids: inline never does
    assert _left("train") == []


def test_grpo_keeps_one_warm_pool_across_steps(tmp_path):
    """The rollout executor holds its pool (and the event loop its sandboxes belong to) for the
    whole run: only the first step's episodes start sandboxes cold; the pool is drained at the
    end."""
    from toolzoo.trainer.loop import train

    out = tmp_path / "run"
    cfg = TrainConfig.model_validate(dict(
        train="t", algorithm="grpo", model={"tiny": TINY}, domains=[DOMAIN], lengths=[1], steps=3, threads=1,
        batch=1, group_size=2, max_turns=2, sft={"episodes": 4, "steps": 0, "batch_size": 4},
        eval={"lengths": [1], "tasks_per_length": 1}, rollout={"max_new_tokens": 8}, sandbox=PROCESS,
        output=str(out)))
    train(cfg, progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    leases = [r["lease_s"] for r in rows if r["phase"] == "grpo"]
    # a cold process sandbox takes ~1 s; a warm lease (and reset) a few ms, tens on a loaded box
    assert len(leases) == 3 and leases[0] > 0.3 and max(leases[1:]) < min(0.1, leases[0] / 5), leases
    assert _left("train") == []
