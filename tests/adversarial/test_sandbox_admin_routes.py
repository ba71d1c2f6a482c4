"""Code an agent runs (``run_python``, ``run_shell``, ``exec``) tries every route it has to the
tool server's admin tools -- the server's stdin under /proc, signals, ptrace, the secret file
and other processes' memory/environment, loopback ports -- and tries to kill the server. On the
process and docker tiers: every move fails, the state the judge reads is untouched, the secret
never shows up in anything the agent sees, and the server still answers (so the episode ends
as the agent's failure, never an infra error)."""

from __future__ import annotations

import os
import re
import uuid

import pytest

from tests.adversarial.attacks import ATTACK
from tests.sandbox.conftest import needs_bwrap, needs_docker, run
from toolzoo.sandbox.base import SandboxLimits, SandboxSpec, create_sandbox

pytestmark = pytest.mark.slow

TIERS = [pytest.param("process", marks=needs_bwrap), pytest.param("docker", marks=needs_docker)]
ROOT = os.geteuid() == 0


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLZOO_STATE_DIR", str(tmp_path / "state"))


def _spec(backend: str) -> SandboxSpec:
    return SandboxSpec(backend=backend, domain="code_workspace", seed=3, run_id=f"adv-{uuid.uuid4().hex[:6]}",
                       episode_id="ep", limits=SandboxLimits(wall_time_s=120, memory_mb=768, pids=128))


def _successes(report: str, server_uids: set[int]) -> list[str]:
    """Lines where a move reached a process that is not the agent's own."""
    bad = []
    for line in report.splitlines():
        m = re.match(r"(stdin|signal|ptrace|read): (WROTE|SENT|ATTACHED|READ) uid=(-?\d+) (\S+)", line)
        # (command lines are world-readable and hold no secret: checked by the secret's absence)
        if m and (int(m.group(3)) in server_uids or int(m.group(3)) == 0) and not m.group(4).endswith("/cmdline"):
            bad.append(line)
        if line.startswith("read: READ uid=-1 /run/toolzoo"):
            bad.append(line)
        if line.startswith("port: ") and "refused" not in line:
            bad.append(line)  # nothing listens in a sandbox; a reply at all would be a route
    return bad


@pytest.mark.parametrize("backend", TIERS)
def test_agent_code_cannot_reach_the_admin_channel(backend):
    if not ROOT:
        pytest.skip("uid separation needs a root driver (a normal user's jail is one uid; documented)")

    async def main():
        sb = await create_sandbox(_spec(backend))
        try:
            secret = sb.admin_secret
            server_uids = {sb.server_uid} if backend == "process" else {65534}
            before_state = await sb.session.snapshot()
            before = await sb.session.state_hash()
            reports = []
            r = await sb.session.call_tool("run_python", {"code": ATTACK, "timeout_s": 30})
            reports.append(r.content)
            r = await sb.session.call_tool("run_shell", {"command": "kill -STOP -1; kill -KILL -1; "
                                                                    "cat /run/toolzoo/admin-secret; echo done",
                                                         "timeout_s": 20})
            reports.append(r.content)
            x = await sb.exec(["python3", "-c", ATTACK], timeout=30)
            reports.append(x.stdout + x.stderr)
            x = await sb.exec("kill -9 -1; pkill -9 -f serve-mcp; echo survived", timeout=20)
            reports.append(x.stdout + x.stderr)
            text = "\n".join(reports)
            # The moves ran (not a vacuous pass) ...
            assert "stdin: refused" in text and "signal: refused" in text and "ptrace: refused" in text, text[:3000]
            assert "read: refused /run/toolzoo/admin-secret" in text, text[:3000]
            # ... and none reached the server.
            assert _successes(text, server_uids) == [], _successes(text, server_uids)
            assert secret not in text
            # The server still answers, and the judge's state is exactly what it was.
            assert await sb.session.state_hash() == before
            assert await sb.session.snapshot() == before_state
            listed = {t.name for t in await sb.session.list_tools()}
            assert "run_tests" in listed and not any(n.startswith("_toolzoo_") for n in listed)
        finally:
            await sb.close()

    run(main(), timeout=240)


@needs_bwrap
def test_process_tier_secret_file_is_gone_and_never_on_a_command_line():
    if not ROOT:
        pytest.skip("needs a root driver")

    async def main():
        from toolzoo.sandbox.limits import pids_where

        sb = await create_sandbox(_spec("process"))
        try:
            assert sb.uid != sb.server_uid and {sb.uid, sb.server_uid}.isdisjoint({0, os.getuid()})
            assert sb._secret_file is not None and not os.path.exists(sb._secret_file)  # removed once read
            assert pids_where(lambda i: sb.admin_secret in i["cmdline"]) == []
            env_hits = []
            for pid in pids_where(lambda i: sb.workspace in i["cmdline"]):
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if sb.admin_secret.encode() in f.read():
                        env_hits.append(pid)
            assert env_hits == []
        finally:
            await sb.close()

    run(main(), timeout=120)


class _AdminRouteAgent:
    """An agent on the public interface whose every move is an attack on the admin channel:
    the attack script through run_python, a kill-everything through run_shell, then a claim
    that the work is done."""

    def __init__(self) -> None:
        self.turn = 0

    async def start(self, task) -> None:
        self.turn = 0

    async def act(self, messages, tools):
        from toolzoo.core import Message, ToolCall

        self.turn += 1
        if self.turn == 1:
            return Message(role="assistant", tool_calls=[
                ToolCall.make("run_python", {"code": ATTACK, "timeout_s": 30}),
                ToolCall.make("run_shell", {"command": "kill -STOP -1; kill -KILL -1; echo tried", "timeout_s": 20}),
                ToolCall.make("_toolzoo_reset", {"seed": 0}),
            ])
        return Message(role="assistant", content="All tests pass now; every bug is fixed.")


@pytest.mark.parametrize("backend", TIERS)
def test_an_attacking_episode_is_the_agents_failure_not_infra(backend):
    if not ROOT:
        pytest.skip("uid separation needs a root driver")
    from toolzoo.core import FailureKind
    from toolzoo.envs.driver import play_episode
    from toolzoo.envs.scripted_user import ScriptedUser
    from toolzoo.envs.taskgen import TaskGenerator
    from toolzoo.tools.zoo import get_domain

    async def main():
        task = TaskGenerator(get_domain("code_workspace")).generate(3, 1)
        spec = _spec(backend).model_copy(update={"seed": task.seed})
        return await play_episode(task, spec, _AdminRouteAgent(), ScriptedUser())

    traj = run(main(), timeout=240)
    assert traj.outcome is not None and not traj.outcome.success
    assert traj.outcome.failure == FailureKind.AGENT, traj.outcome
    replies = [m.content or "" for m in traj.messages if m.role == "tool"]
    assert any("unknown tool '_toolzoo_reset'" in r for r in replies)
