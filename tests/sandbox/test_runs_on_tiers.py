"""`toolzoo run` on the process and docker tiers: the oracle succeeds on every built-in domain,
and after a SIGKILL of the driver `toolzoo sandbox gc` leaves nothing behind. Code tools are
contained and report runaway commands as tool errors."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from toolzoo.envs.run_config import load_run_config
from toolzoo.envs.runner import Runner
from toolzoo.sandbox import SandboxLimits, SandboxSpec, create_sandbox
from toolzoo.tools.zoo import builtin_names

from .conftest import CODE_BACKENDS

TIER_PARAMS = CODE_BACKENDS


def _write_config(tmp_path: Path, backend: str, **extra) -> Path:
    cfg = {"run": f"tier-{backend}", "domains": builtin_names(), "lengths": [1, 3], "tasks_per_length": 2,
           "trials": 1, "agent": {"kind": "oracle"}, "concurrency": 4, "report": False,
           "sandbox": {"backend": backend, "limits": {"wall_time_s": 300, "memory_mb": 768, "pids": 128}},
           "output": str(tmp_path / "out"), "max_infra_retries": 0, **extra}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.conformance
@pytest.mark.parametrize("backend", TIER_PARAMS)
def test_oracle_succeeds_on_every_builtin_domain(tmp_path, backend):
    config = load_run_config(_write_config(tmp_path, backend))
    summary = asyncio.run(Runner(config, run_id=f"tier-{backend}-{os.getpid()}").run(progress=False))
    assert summary["infra_errors"] == 0, [t.outcome.reason for t in Runner(config, resume=True).store
                                          if t.outcome.failure == "infra"][:3]
    assert all(row["rate"] == 1.0 for row in summary["by_length"].values()), summary["by_length"]
    assert sum(row["episodes"] for row in summary["by_length"].values()) == 4 * len(builtin_names())


@pytest.mark.conformance
@pytest.mark.parametrize("backend", TIER_PARAMS)
def test_gc_after_sigkill_of_a_run_leaves_nothing(tmp_path, backend):
    from toolzoo.sandbox.limits import pids_where
    from toolzoo.sandbox.reaper import entries

    run_id = f"tier-{backend}"  # the run's name is its run id
    cfg = _write_config(tmp_path, backend, domains=["retail_orders"], lengths=[8], tasks_per_length=40, concurrency=4)
    proc = subprocess.Popen([sys.executable, "-m", "toolzoo.cli", "run", str(cfg), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "out" / "trajectories.jsonl"
    deadline = time.time() + 240
    # Kill once episodes are being stored and sandboxes are open (registered).
    while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 1 and entries(run_id)):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the driver dies with sandboxes open
    proc.wait()
    assert entries(run_id), "the killed driver left registered sandboxes (the test must exercise gc)"
    done = subprocess.run([sys.executable, "-m", "toolzoo.cli", "sandbox", "gc", "--run", run_id],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert entries(run_id) == []
    assert pids_where(lambda i: "toolzoo-sbx-" in i["cmdline"] or "serve-mcp retail_orders" in i["cmdline"]) == []
    if backend == "docker":
        from .conftest import leftover_containers

        assert leftover_containers(run_id) == []


RUNAWAYS = {
    "fork bomb": "bomb() { bomb | bomb & }; bomb",
    "memory bomb": "python3 -c 'x = bytearray(1 << 34)'",
    "endless output": "yes",
    "sleep forever": "sleep 100000",
}


@pytest.mark.escape
@pytest.mark.parametrize("backend", TIER_PARAMS)
def test_code_tools_contain_runaways_and_report_them(backend):
    async def main():
        spec = SandboxSpec(backend=backend, domain="code_workspace", seed=0, run_id=f"runaway-{os.getpid()}",
                           episode_id="e", limits=SandboxLimits(wall_time_s=300, memory_mb=256, pids=64))
        sandbox = await create_sandbox(spec)
        try:
            for name, command in RUNAWAYS.items():
                started = time.monotonic()
                result = await sandbox.session.call_tool("run_shell", {"command": command, "timeout_s": 5})
                assert time.monotonic() - started < 60, name
                if name == "endless output":
                    assert not result.is_error and result.structured["truncated"], result.content
                elif name == "memory bomb":
                    assert result.is_error or result.structured["exit_code"] != 0, result.content
                elif name == "fork bomb":  # stopped by the process limit, or by the timeout
                    assert result.is_error or "fork" in result.structured["stderr"].lower(), result.content
                else:
                    assert result.is_error and ("timed out" in result.content or "signal" in result.content), \
                        (name, result.content)
            ok = await sandbox.session.call_tool("run_shell", {"command": "echo still here"})
            assert not ok.is_error and "still here" in ok.structured["stdout"]  # the harness kept running
        finally:
            await sandbox.close()
        from toolzoo.sandbox.limits import pids_where

        assert pids_where(lambda i: "toolzoo-sbx-" in i["cmdline"]) == []
    asyncio.run(main())
