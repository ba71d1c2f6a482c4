"""Third-party MCP servers (official reference servers from PyPI) as tool sources, and MCP import."""

import os
import shutil
import subprocess
import sys
import uuid
from datetime import datetime

import pytest

from toolzoo.sandbox.base import SandboxSpec, SandboxUnsupported
from toolzoo.sandbox.limits import pids_where, proc_info
from toolzoo.sandbox.reaper import entries
from toolzoo.sandbox.source import create_source, plan_command
from toolzoo.tools.loader import load_domain
from toolzoo.tools.mcp_import import import_mcp, import_mcp_command
from toolzoo.tools.spec import SourceSpec

pytestmark = pytest.mark.anyio
TIME = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]


@pytest.fixture
def git_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    run("config", "user.email", "t@example.com")
    run("config", "user.name", "Tester")
    (repo / "a.txt").write_text("one\n")
    run("add", "a.txt")
    run("commit", "-q", "-m", "first commit")
    (repo / "b.txt").write_text("untracked\n")
    return repo


async def test_time_server_as_source():
    sb = await create_source(SandboxSpec(domain="unused"), SourceSpec(command=TIME))
    try:
        assert sb.isolation.startswith("none")
        names = {t.name for t in await sb.session.list_tools()}
        assert {"get_current_time", "convert_time"} <= names
        r = await sb.session.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
        assert not r.is_error and "Asia/Tokyo" in r.content and "+09:00" in r.content
        year = datetime.now().year
        assert str(year) in r.content or str(year + 1) in r.content
        bad = await sb.session.call_tool("get_current_time", {"timezone": "Not/AZone"})
        assert bad.is_error
        with pytest.raises(SandboxUnsupported):
            await sb.snapshot()
        with pytest.raises(SandboxUnsupported):
            await sb.exec(["true"])
    finally:
        await sb.close()


async def test_git_server_as_source(git_repo):
    src = SourceSpec(command=[sys.executable, "-m", "mcp_server_git", "--repository", str(git_repo)])
    sb = await create_source(SandboxSpec(domain="unused"), src)
    try:
        names = {t.name for t in await sb.session.list_tools()}
        assert {"git_status", "git_log"} <= names
        status = await sb.session.call_tool("git_status", {"repo_path": str(git_repo)})
        assert not status.is_error and "b.txt" in status.content
        log = await sb.session.call_tool("git_log", {"repo_path": str(git_repo)})
        assert not log.is_error and "first commit" in log.content
    finally:
        await sb.close()


async def test_import_keeps_the_servers_read_only_hints(git_repo, tmp_path):
    cmd = [sys.executable, "-m", "mcp_server_git", "--repository", str(git_repo)]
    out = await import_mcp(cmd, None, tmp_path / "git.yaml", "simulate")
    tools = {t.name: t for t in load_domain(out).spec.tools}
    assert tools["git_status"].read_only is True and tools["git_log"].read_only is True
    assert tools["git_add"].read_only is False and tools["git_commit"].read_only is False


def test_isolation_is_never_silently_downgraded():
    src = SourceSpec(command=TIME)
    assert plan_command(SandboxSpec(domain="x"), src)[2] == "none (plain subprocess)"
    with pytest.raises(SandboxUnsupported):
        plan_command(SandboxSpec(domain="x", backend="docker"), src)


async def test_import_passthrough_then_serve_through_the_source(tmp_path):
    out = await import_mcp(TIME, None, tmp_path / "time.yaml", "passthrough")
    domain = load_domain(out)
    assert domain.spec.source.command == TIME
    tool = domain.spec.tool("get_current_time")
    assert "timezone" in tool.parameters["properties"] and tool.description
    sb = await create_source(SandboxSpec(domain=str(out)))  # the source is read from the domain file
    try:
        r = await sb.session.call_tool("get_current_time", {"timezone": "UTC"})
        assert not r.is_error and "UTC" in r.content
    finally:
        await sb.close()


def test_import_simulate_command(tmp_path, capsys):
    out = tmp_path / "sim.yaml"
    assert import_mcp_command(TIME, None, out, simulate=True) == 0
    assert "2 tools" in capsys.readouterr().out
    domain = load_domain(out)
    assert domain.spec.source is None and all(t.simulate == "llm" for t in domain.spec.tools)
    assert {t.name for t in domain.spec.tools} == {"get_current_time", "convert_time"}


def test_import_command_errors(tmp_path, capsys):
    assert import_mcp_command(None, None, tmp_path / "x.yaml") == 2
    assert import_mcp_command([sys.executable, "-c", "raise SystemExit(3)"], None, tmp_path / "y.yaml") == 1
    assert not (tmp_path / "y.yaml").exists()


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


def _jailed_server(sb, needle: str) -> int:
    """The third-party server's own process: a descendant of the sandbox's jail."""
    found = [p for p in pids_where(lambda i: i["cmdline"].startswith(sys.executable) and needle in i["cmdline"])
             if _descends_from(p, sb.pid)]
    assert len(found) == 1, found
    return found[0]


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        info = proc_info(pid)
        if info is None:
            return False
        pid = info["ppid"]
    return False


@needs_bwrap
async def test_time_server_runs_inside_the_process_jail():
    spec = SandboxSpec(domain="unused", backend="process", run_id=f"t-{uuid.uuid4().hex[:8]}")
    sb = await create_source(spec, SourceSpec(command=TIME))
    try:
        assert sb.isolation.startswith("bubblewrap")
        r = await sb.session.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
        assert not r.is_error and "+09:00" in r.content
        server = _jailed_server(sb, "mcp_server_time")
        # No way out, shown by the server's own network namespace: loopback only, no route.
        ifaces = [l.split(":")[0].strip() for l in open(f"/proc/{server}/net/dev").read().splitlines()[2:]]
        assert ifaces == ["lo"]
        assert open(f"/proc/{server}/net/route").read().splitlines()[1:] == []
        if os.geteuid() == 0:  # a root driver drops the server to the sandbox's own uid
            uid = next(l for l in open(f"/proc/{server}/status") if l.startswith("Uid:")).split()[1]
            assert uid == str(sb.uid) and uid != "0"
        with pytest.raises(SandboxUnsupported):
            await sb.snapshot()  # a third-party server's state is its own
        # The jail's workspace is shared with exec (set-up and checks run beside the server).
        done = await sb.exec("echo hello > note.txt && cat note.txt", timeout=20)
        assert done.stdout.strip() == "hello" and await sb.read_file("note.txt") == b"hello\n"
    finally:
        await sb.close()
    assert pids_where(lambda i: sb.workspace in i["cmdline"]) == []
    assert not os.path.exists(sb.workspace)
    assert entries(spec.run_id) == []


@needs_bwrap
async def test_git_server_in_the_jail_reads_a_repository_bound_read_only(git_repo):
    # The repository belongs to the driver's user; the jailed server runs as another uid.
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
    src = SourceSpec(command=[sys.executable, "-m", "mcp_server_git", "--repository", str(git_repo)], env=env)
    sb = await create_source(SandboxSpec(domain="unused", backend="process", options={"ro_binds": [str(git_repo)]}),
                             src)
    try:
        assert sb.isolation.startswith("bubblewrap")
        status = await sb.session.call_tool("git_status", {"repo_path": str(git_repo)})
        assert not status.is_error and "b.txt" in status.content, status.content
        log = await sb.session.call_tool("git_log", {"repo_path": str(git_repo)})
        assert not log.is_error and "first commit" in log.content
        # Read-only: the agent's git server cannot change the host's repository.
        add = await sb.session.call_tool("git_add", {"repo_path": str(git_repo), "files": ["b.txt"]})
        assert add.is_error
    finally:
        await sb.close()
    assert "b.txt" in subprocess.run(["git", "status", "--porcelain"], cwd=git_repo, capture_output=True,
                                     text=True).stdout.replace("?? ", "")
