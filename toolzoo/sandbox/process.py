"""The process tier: the domain's tool server runs as a subprocess jailed by bubblewrap
(no network, read-only system and Python, private /tmp, a per-sandbox workspace at
/workspace, rlimits, its own process group, a time to live), talking MCP over stdio.

``exec`` runs each command in a fresh jail of the same kind sharing the workspace, so
nothing an agent starts outlives its command (the jail's pid namespace dies with it).

The same jail hosts third-party MCP servers (a domain's ``source.command``): the server is
then theirs, not toolzoo's, so the session has no admin tools (no snapshot/restore), while
the workspace, exec, limits, registry and reaper work as for toolzoo's own server.
``options.ro_binds`` lists host paths to show read-only inside the jail at the same path
(a repository for a git server, say).
Without bubblewrap the tier runs only when ``spec.allow_unisolated`` is set, and
``isolation`` says so: it is never silently downgraded.

Admin channel: the driver makes a per-sandbox secret and writes it to a host file (mode 0400,
owned by the server's uid) that only the tool server's jail shows, at ``limits.SECRET_PATH``;
the server reads it at start and the driver removes the host file once the session is open.
With a root driver the server runs as its own uid (``server_uid``) and everything the agent
runs -- ``exec`` and the commands the server's code tools start -- as another (``uid``), both
claimed uniquely (``identity.allocate_uids``): agent code cannot read the secret, open the
server's stdin under /proc, ptrace or signal it. As a normal user (one uid, user namespace)
that separation is not available, and ``isolation`` says "shared uid".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from toolzoo.sandbox import identity
from toolzoo.sandbox import limits as L
from toolzoo.sandbox.base import ExecResult, SandboxSpec, ServerState, deadline_for, deadline_passed, exec_plan, started
from toolzoo.sandbox.reaper import RegistryEntry, process_start_time, record, unrecord
from toolzoo.sandbox.source import SourceSession
from toolzoo.tools.session import MCPSession, stdio_params
from toolzoo.tools.serve_slim import SCRIPT as SLIM_SERVER
from toolzoo.tools.spec import SourceSpec


class IsolationUnavailable(RuntimeError):
    """bubblewrap is missing and the config does not allow running unisolated."""


def workspace_root() -> Path:
    return Path(os.environ.get("TOOLZOO_WORKSPACE_DIR") or tempfile.gettempdir())


def _domain_arg(spec: SandboxSpec) -> tuple[str, list[str]]:
    """A domain given as a file path must be visible inside the jail: bind its directory."""
    p = Path(spec.domain)
    if p.suffix in (".yaml", ".yml") and p.exists():
        p = p.resolve()
        return str(p), [str(p.parent)]
    return spec.domain, []


class ProcessSandbox(ServerState):
    def __init__(self, spec: SandboxSpec, sandbox_id: str, workspace: str, uid: int | None, isolation: str,
                 extra_ro: list[str], source: SourceSpec | None = None, server_uid: int | None = None):
        self.spec = spec
        self.source = source
        self.sandbox_id = sandbox_id
        self.deadline = deadline_for(spec)
        self.workspace = workspace
        self.uid = uid  # the agent's (exec, workspace owner); a third-party server's too
        self.server_uid = server_uid  # toolzoo's own tool server (root driver)
        self.admin_secret = secrets.token_urlsafe(32) if source is None else None
        self._secret_file: str | None = None
        self.isolation = isolation
        self.tainted = False  # code ran or files changed: a pool must not reuse it
        self.pid: int | None = None
        self._extra_ro = extra_ro
        self._session: MCPSession | None = None
        self._owner: L.OwnedSession | None = None
        self._entry: RegistryEntry | None = None
        self._closed = False

    # -- the jail -------------------------------------------------------------------------
    @property
    def isolated(self) -> bool:
        return self.isolation.startswith("bubblewrap")

    def _prefix(self, *, ttl_s: float | None, cpu_seconds: float | None, server: bool = False) -> list[str]:
        if self.isolated:
            privs = None
            if self.uid is not None and not (server and self.source is not None):
                # The tool server keeps only what starts and stops agent code as the agent's uid;
                # agent code (an exec) drops to that uid with nothing. Both write group-shared files.
                privs = (identity.server_privs(self.server_uid, self.uid) if server
                         else identity.agent_privs(self.uid)) + identity.UMASK_002
            return L.bwrap_prefix(self.workspace, self.spec.limits, uid=self.uid, extra_ro=self._extra_ro,
                                  file_bytes=L.file_bytes(self.spec), cpu_seconds=cpu_seconds, ttl_s=ttl_s,
                                  privs=privs, secret_file=self._secret_file if server else None)
        # Unisolated (allowed by config): limits and time to live still apply.
        pre = L.prlimit_args(self.spec.limits, file_bytes=L.file_bytes(self.spec), cpu_seconds=cpu_seconds)
        if ttl_s is not None:
            pre += ["timeout", "-s", "KILL", str(max(1, int(ttl_s + 0.999)))]
        return pre

    def _marker_env(self) -> dict[str, str]:
        return {"TOOLZOO_SANDBOX": self.sandbox_id}

    def _server(self) -> tuple[list[str], dict[str, str]]:
        """The tool server's command line and extra environment."""
        if self.source is not None:
            assert self.source.command is not None
            return list(self.source.command), dict(self.source.env)
        domain, _ = _domain_arg(self.spec)
        secret_path = L.SECRET_PATH if self.isolated else self._secret_file
        env = {identity.ENV_AGENT_UID: str(self.uid)} if self.uid is not None else {}
        # The slim entry point: what `toolzoo serve-mcp --transport stdio` serves, ~28 MiB less
        # unique memory per sandbox (no CLI, gymnasium or CEL REPL imports; bench/density.py).
        return [sys.executable, "-X", f"toolzoo_sandbox={self.sandbox_id}", SLIM_SERVER,
                domain, "--seed", str(self.spec.seed),
                "--admin", "--admin-secret-file", str(secret_path)], env

    def _write_secret(self) -> None:
        """The admin secret in a host file only the server's uid (root driver) or this user can read."""
        d = identity.secrets_dir()
        path = d / self.sandbox_id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as f:
            f.write(self.admin_secret)
        if self.server_uid is not None:
            os.chown(path, self.server_uid, 0)
        self._secret_file = str(path)

    def _remove_secret(self) -> None:
        if self._secret_file is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._secret_file)

    async def _start(self) -> None:
        if self.admin_secret is not None:
            self._write_secret()
        server, server_env = self._server()
        argv = self._prefix(ttl_s=self.deadline - time.time(), cpu_seconds=None, server=True) + server
        env = self._marker_env() | L.unisolated_env() | server_env
        cwd = None if self.isolated else self.workspace
        me = os.getpid()
        # Registered before the server starts: a driver killed during start-up still leaves an
        # entry, and the reaper finds the processes by the workspace path in their command line.
        # ``close`` removes whichever entry is current, so a failed or cancelled start leaves none.
        self._entry = RegistryEntry(
            tier="process", sandbox_id=self.sandbox_id, run_id=self.spec.run_id, episode_id=self.spec.episode_id,
            labels=self.spec.labels(self.deadline), deadline=self.deadline, driver_pid=me,
            driver_start=process_start_time(me), pgid=None, uid=self.uid, workspace=self.workspace,
            uids=[u for u in (self.uid, self.server_uid) if u is not None])
        record(self._entry)
        # A third-party server has no toolzoo admin tools: its session says so.
        session_cls = SourceSession if self.source is not None else MCPSession
        self._owner = L.OwnedSession(stdio_params(argv, env=env, cwd=cwd), session_cls,
                                     admin_secret=self.admin_secret)
        self._session = await self._owner.open()
        self._remove_secret()  # the server read it before answering initialize
        # The SDK spawns the server in a new session: its pid is the group id. Find it by our
        # unique workspace path in its command line (the SDK does not expose the process).
        pids = L.pids_where(lambda i: i["ppid"] == me and self.workspace in i["cmdline"]) if self.isolated else \
            L.pids_where(lambda i: i["ppid"] == me and self.sandbox_id in i["cmdline"])
        self.pid = pids[0] if pids else None
        self._entry = self._entry.model_copy(update={"pgid": self.pid})
        record(self._entry)

    # -- the contract -----------------------------------------------------------------------
    async def exec(self, command: list[str] | str, stdin: str | bytes | None = None,
                   timeout: float | None = None) -> ExecResult:
        result, _ = await self._exec_raw(command, stdin, timeout)
        return result

    async def _exec_raw(self, command: list[str] | str, stdin: str | bytes | None,
                        timeout: float | None) -> tuple[ExecResult, bytes]:
        self._check_open()
        self.tainted = True
        t, argv, data = exec_plan(self.deadline, command, stdin, timeout)
        if t <= 0:
            return deadline_passed(), b""
        # CPU seconds cap the command too (a busy loop dies by SIGXCPU even before the timeout).
        full = self._prefix(ttl_s=None, cpu_seconds=t * self.spec.limits.cpu + 1) + argv
        env = None if self.isolated else os.environ | self._marker_env() | L.unisolated_env()
        return await L.run_capped(full, stdin=data, timeout=t, output_bytes=self.spec.limits.output_bytes,
                                  env=env, cwd=None if self.isolated else self.workspace)

    async def read_file(self, path: str) -> bytes:
        self._check_open()
        host = L.confine(self.workspace, path)
        return await asyncio.to_thread(Path(host).read_bytes)

    async def write_file(self, path: str, data: bytes) -> None:
        self._check_open()
        self.tainted = True
        host = L.confine(self.workspace, path)
        if len(data) > L.file_bytes(self.spec):
            raise OSError(f"file of {len(data)} bytes exceeds the sandbox's file size limit")

        def write() -> None:
            os.makedirs(os.path.dirname(host), exist_ok=True)
            # O_NOFOLLOW: a symlink planted at the final component cannot redirect the write.
            fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if self.uid is not None:
                os.chown(host, self.uid, self.uid)
                os.chmod(host, 0o664)  # the tool server (group member) may rewrite it too

        await asyncio.to_thread(write)

    def alive(self) -> bool:
        return self.pid is not None and L.proc_info(self.pid) is not None and L.proc_info(self.pid)["state"] != "Z"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Kill first so the SDK's graceful shutdown (stdin close, 2 s grace) returns at once.
        # Only a group whose leader still carries this sandbox's marker: pids get reused.
        if self.pid is not None and self._ours(self.pid):
            L.kill_group(self.pid)
        if self._owner is not None:
            await self._owner.close()
        uids = [u for u in (self.uid, self.server_uid) if u is not None]
        if uids:
            # Processes of the sandbox's own uids (a fork bomb may still be forking): kill until
            # none. The uids were claimed for this sandbox alone, so no other sandbox is touched.
            for _ in range(100):
                if not sum(L.kill_uid(u) for u in uids):
                    break
                await asyncio.sleep(0.03)
            identity.release_uids(uids)
        self._remove_secret()
        shutil.rmtree(self.workspace, ignore_errors=True)
        if self._entry is not None:
            unrecord(self._entry)

    def _ours(self, pid: int) -> bool:
        info = L.proc_info(pid)
        return info is not None and (self.workspace in info["cmdline"] or self.sandbox_id in info["cmdline"])

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("sandbox is closed")


def isolation_for(spec: SandboxSpec) -> tuple[str, int | None]:
    """What the tier can obtain. Returns no uid: :func:`create_process` claims them (a probe
    like ``source.py``'s must not leave claims behind)."""
    if L.bwrap_path() is not None and not spec.options.get("no_bwrap"):
        if L.running_as_root():
            return "bubblewrap (own uid)", None
        return "bubblewrap (shared uid: agent code can reach the tool server)", None
    if spec.allow_unisolated:
        return "none (allowed by config)", None
    raise IsolationUnavailable(
        "the process tier needs bubblewrap (`apt-get install bubblewrap`); set sandbox.allow_unisolated: true "
        "to run tool servers without isolation")


async def create_process(spec: SandboxSpec, source: SourceSpec | None = None) -> ProcessSandbox:
    """A jailed sandbox serving ``spec.domain``, or the third-party server ``source``."""
    isolation, _ = isolation_for(spec)
    uid = server_uid = None
    if isolation == "bubblewrap (own uid)":
        # The agent's uid, and (toolzoo's own server) the server's: claimed, never shared.
        uid, server_uid = identity.allocate_uids(2) if source is None else (identity.allocate_uids(1)[0], None)
        isolation = "bubblewrap (own uids: tool server and agent code apart)" if source is None else isolation
    sandbox_id = uuid.uuid4().hex[:12]
    root = workspace_root()
    root.mkdir(parents=True, exist_ok=True)
    try:
        workspace = tempfile.mkdtemp(prefix=f"toolzoo-sbx-{sandbox_id}-", dir=root)
        if uid is not None:
            os.chown(workspace, uid, uid)
            os.chmod(workspace, 0o2770)  # setgid: both identities share the agent's group
    except BaseException:
        identity.release_uids([u for u in (uid, server_uid) if u is not None])
        raise
    _, extra_ro = _domain_arg(spec)
    extra_ro += [str(Path(p).resolve()) for p in spec.options.get("ro_binds", [])]
    return await started(ProcessSandbox(spec, sandbox_id, workspace, uid, isolation, extra_ro, source,
                                        server_uid=server_uid))
