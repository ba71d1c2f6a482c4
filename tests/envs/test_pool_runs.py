"""Warm sandboxes in runs (``sandbox.pool``): on the process tier the per-episode sandbox
overhead, from the run's own timings (``timing.lease_s``), is a few milliseconds after warm-up;
the pool is drained when the run ends, and after a SIGKILL ``toolzoo sandbox gc`` leaves
nothing behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from toolzoo.envs.run_config import load_run_config
from toolzoo.envs.runner import Runner

pytestmark = [pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"),
              pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _private_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLZOO_STATE_DIR", str(tmp_path / "state"))  # gc here touches only these sandboxes


def _write(tmp_path: Path, run: str, **extra) -> Path:
    cfg = {"run": run, "domains": ["retail_orders"], "lengths": [1], "tasks_per_length": 30, "trials": 1,
           "agent": {"kind": "oracle"}, "concurrency": 2, "report": False, "max_infra_retries": 0,
           "sandbox": {"backend": "process", "transport": "mcp", "pool": 3,
                       "limits": {"wall_time_s": 300, "memory_mb": 768, "pids": 128}},
           "output": str(tmp_path / run), **extra}
    path = tmp_path / f"{run}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _workspaces(run_id: str) -> set[str]:
    from toolzoo.sandbox.reaper import entries

    return {e.workspace for _, e in entries(run_id) if e.workspace}


def _leftovers(run_id: str, workspaces: set[str]) -> tuple[list, list]:
    """Registry entries of the run, and processes of its sandboxes (by their workspace paths:
    other runs' sandboxes on this machine are not ours to count)."""
    from toolzoo.sandbox.limits import pids_where
    from toolzoo.sandbox.reaper import entries

    assert workspaces
    return entries(run_id), pids_where(lambda i: any(w in i["cmdline"] for w in workspaces))


def test_a_pooled_process_run_leases_in_milliseconds_and_leaves_nothing(tmp_path):
    config = load_run_config(_write(tmp_path, f"pool-{os.getpid()}"))
    seen: set[str] = set()
    runner = Runner(config, on_episode=lambda traj: seen.update(_workspaces(config.run)))
    summary = asyncio.run(runner.run(progress=False))
    trajs = sorted(runner.store, key=lambda t: t.episode_id)
    assert len(trajs) == 30 and summary["by_length"]["1"]["rate"] == 1.0 and summary["infra_errors"] == 0
    leases = [t.timing.lease_s for t in runner.store]  # in completion order
    warm = leases[config.concurrency + config.sandbox.pool:]  # after the first leases found the pool filling
    assert statistics.median(warm) <= 0.005, sorted(warm)
    assert summary["timing"]["lease_s"]["median"] <= 0.005
    assert max(leases[:2]) > 0.05  # the first leases waited for cold sandboxes: the pool is what made it fast
    assert len(seen) >= config.sandbox.pool  # the pooled sandboxes were registered while the run went on
    assert _leftovers(config.run, seen) == ([], [])  # drained at the end


def test_sigkill_of_a_pooled_run_then_gc_leaves_nothing(tmp_path):
    from toolzoo.sandbox.reaper import entries

    run_id = f"poolkill-{os.getpid()}"
    cfg = _write(tmp_path, run_id, tasks_per_length=200)
    proc = subprocess.Popen([sys.executable, "-m", "toolzoo.cli", "run", str(cfg), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    out = tmp_path / run_id / "trajectories.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 3 and entries(run_id)):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # leased and idle pooled sandboxes are open
    proc.wait()
    assert len(entries(run_id)) >= 2, "the killed run must leave pooled sandboxes for gc to find"
    seen = _workspaces(run_id)
    done = subprocess.run([sys.executable, "-m", "toolzoo.cli", "sandbox", "gc", "--run", run_id],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert _leftovers(run_id, seen) == ([], [])
