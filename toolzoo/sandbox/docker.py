"""The docker tier: one container per sandbox, running the domain's tool server over stdio.

The container has no network (``network_mode none``), drops every capability, sets
no-new-privileges, caps pids/memory/cpu, has a read-only root with tmpfs /tmp and /workspace,
runs as nobody, and carries toolzoo's labels. Its time to live is enforced *inside* it: the
server runs under ``timeout -s KILL <ttl>`` behind docker's init, so the container dies on
time even when the driver is gone. MCP goes over ``docker run -i`` (the SDK's stdio client);
everything else (inspect, exec with output caps and timeouts, files, kill) uses the docker SDK.

Two identities in the container: the tool server runs as ``SERVER_UID`` keeping only
CAP_SETUID/SETGID/KILL (to start and stop agent code), and everything the agent runs --
``docker exec`` and the commands the server's code tools start -- as ``AGENT_UID`` with no
capabilities. The per-sandbox admin secret is a host file (mode 0400, ``SERVER_UID``) bound
read-only at ``limits.SECRET_PATH``; agent code can neither read it nor reach the server's
stdin, memory or signals (all need the server's uid).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from toolzoo.sandbox.base import ExecResult, SandboxSpec, ServerState, deadline_for, deadline_passed, exec_plan, started
from toolzoo.sandbox import identity
from toolzoo.sandbox.limits import (SECRET_PATH, WORKSPACE, OwnedSession, container_path, file_bytes, kill_group,
                                    proc_info)
from toolzoo.sandbox.reaper import RegistryEntry, process_start_time, record, unrecord
from toolzoo.tools.session import MCPSession, stdio_params

DEFAULT_IMAGE = os.environ.get("TOOLZOO_IMAGE", "toolzoo-sandbox:latest")
BUILD_SCRIPT = Path(__file__).parent / "image" / "build.sh"
WORKSPACE_MB_DEFAULT = 256
SERVER_UID = 65534  # nobody: the tool server
AGENT_UID = 10001  # code the agent runs (exec, code tools' commands); also the shared group

_client_lock = threading.Lock()
_client: Any = None


def docker_client() -> Any:
    """One shared SDK client (its connection pool is sized for many concurrent sandboxes)."""
    global _client
    with _client_lock:
        if _client is None:
            import docker

            _client = docker.from_env(timeout=60, max_pool_size=64)
        return _client


def read_frames(raw: socket.socket, deadline: float):
    """Yield (stream, bytes) frames of a non-tty docker exec stream (8-byte headers: stream id,
    3 zero bytes, big-endian length) until EOF, or (None, b"") once ``deadline`` passes.
    docker-py's own reader polls without a timeout, so a stalled stream would hold it forever."""
    pending = bytearray()
    while True:
        while len(pending) >= 8:
            size = int.from_bytes(pending[4:8], "big")
            if len(pending) < 8 + size:
                break
            stream, chunk = pending[0], bytes(pending[8:8 + size])
            del pending[:8 + size]
            yield stream, chunk
        left = deadline - time.monotonic()
        if left <= 0:
            yield None, b""
            return
        raw.settimeout(left)
        try:
            data = raw.recv(65536)
        except (socket.timeout, TimeoutError):
            yield None, b""
            return
        if not data:
            return
        pending += data


def docker_available() -> tuple[bool, str]:
    try:
        docker_client().ping()
        return True, "ok"
    except Exception as exc:
        return False, f"dockerd not reachable: {type(exc).__name__}: {exc}"


_ENSURED: set[str] = set()


def ensure_image(image: str = DEFAULT_IMAGE) -> str:
    """Build (or bring up to date) the sandbox image from local files, once per process.
    build.sh skips every step that is already done and rebuilds the image only when the
    toolzoo wheel or its pinned dependencies changed, so the image always runs this code."""
    if image in _ENSURED:
        return image
    # PYTHON: this interpreter, whose installed versions the image's packages are pinned to.
    subprocess.run(["bash", str(BUILD_SCRIPT)], check=True,
                   env=os.environ | {"TOOLZOO_IMAGE": image, "PYTHON": sys.executable})
    docker_client().images.get(image)
    _ENSURED.add(image)
    return image


def kill_group_if(pid: int, comm: str) -> bool:
    info = proc_info(pid)
    return info is not None and info["cmdline"].startswith(comm) and info["pgid"] == pid and kill_group(pid)


class DockerSandbox(ServerState):
    isolation = ("docker (network none, cap_drop ALL, no-new-privileges, read-only root; "
                 "tool server and agent code as different uids)")

    def __init__(self, spec: SandboxSpec, sandbox_id: str, image: str):
        self.spec = spec
        self.sandbox_id = sandbox_id
        self.image = image
        self.name = f"toolzoo-{sandbox_id}"
        self.deadline = deadline_for(spec)
        self.tainted = False
        self.container: Any = None
        self._session: MCPSession | None = None
        self._owner: OwnedSession | None = None
        self._entry: RegistryEntry | None = None
        self._closed = False
        self.admin_secret = secrets.token_urlsafe(32)
        self._secret_file: str | None = None

    def _write_secret(self) -> str:
        path = identity.secrets_dir() / f"docker-{self.sandbox_id}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as f:
            f.write(self.admin_secret)
        with contextlib.suppress(PermissionError):  # a non-root driver: dockerd (root) reads it anyway
            os.chown(path, SERVER_UID, 0)
        self._secret_file = str(path)
        return self._secret_file

    def _remove_secret(self) -> None:
        if self._secret_file is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._secret_file)

    def run_args(self) -> list[str]:
        lim = self.spec.limits
        ttl = max(1, math.floor(self.deadline - time.time()))
        ws_mb = int(self.spec.options.get("workspace_mb", WORKSPACE_MB_DEFAULT))
        # Root in the container only to drop at once (setpriv below) to the server's uid, keeping
        # the three capabilities it needs for agent code; nothing else is ever granted.
        args = ["run", "-i", "--rm", "--name", self.name, "--network", "none", "--cap-drop", "ALL",
                "--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "KILL",
                "--security-opt", "no-new-privileges", "--pids-limit", str(lim.pids),
                "--memory", f"{lim.memory_mb}m", "--memory-swap", f"{lim.memory_mb}m", "--cpus", str(lim.cpu),
                "--ulimit", f"nofile={lim.open_files}:{lim.open_files}", "--read-only", "--init",
                "--user", "0:0", "--workdir", WORKSPACE,
                "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m,mode=1777",
                "--tmpfs", f"{WORKSPACE}:rw,exec,nosuid,nodev,size={ws_mb}m,uid={AGENT_UID},gid={AGENT_UID},mode=2770"]
        # Code tools (code_workspace) work in the container's workspace.
        args += ["-e", f"TOOLZOO_WORKSPACE={WORKSPACE}", "-e", f"TOOLZOO_SANDBOX={self.sandbox_id}",
                 "-e", f"{identity.ENV_AGENT_UID}={AGENT_UID}"]
        if self._secret_file is not None:
            args += ["-v", f"{self._secret_file}:{SECRET_PATH}:ro"]
        for k, v in self.spec.labels(self.deadline).items():
            args += ["--label", f"{k}={v}"]
        args += ["--label", f"toolzoo.dev/sandbox={self.sandbox_id}"]
        domain = self.spec.domain
        p = Path(domain)
        if p.suffix in (".yaml", ".yml") and p.exists():  # a domain file: mount it read-only
            args += ["-v", f"{p.resolve()}:/domains/{p.name}:ro"]
            domain = f"/domains/{p.name}"
        args += [self.image, *identity.server_privs(SERVER_UID, AGENT_UID, bounding=False), *identity.UMASK_002,
                 "timeout", "-s", "KILL", str(ttl),
                 "toolzoo", "serve-mcp", domain, "--transport", "stdio", "--seed", str(self.spec.seed),
                 "--admin", "--admin-secret-file", SECRET_PATH]
        return args

    async def _start(self) -> None:
        self._entry = RegistryEntry(
            tier="docker", sandbox_id=self.sandbox_id, run_id=self.spec.run_id, episode_id=self.spec.episode_id,
            labels=self.spec.labels(self.deadline), deadline=self.deadline, driver_pid=os.getpid(),
            driver_start=process_start_time(os.getpid()), container=self.name)
        record(self._entry)  # before the container exists: a crash in between still gets reaped
        self._write_secret()
        self._owner = OwnedSession(stdio_params([os.environ.get("TOOLZOO_DOCKER_CLI", "docker"), *self.run_args()]),
                                   admin_secret=self.admin_secret)
        self._session = await self._owner.open()
        self._remove_secret()  # the bind keeps the file for the server; nothing else on the host
        self.container = await asyncio.to_thread(docker_client().containers.get, self.name)

    # -- exec -------------------------------------------------------------------------------
    async def exec(self, command: list[str] | str, stdin: str | bytes | None = None,
                   timeout: float | None = None) -> ExecResult:
        self.tainted = True
        result, _ = await self._exec_raw(command, stdin, timeout, self.spec.limits.output_bytes)
        return result

    async def _exec_raw(self, command: list[str] | str, stdin: str | bytes | None, timeout: float | None,
                        cap: int) -> tuple[ExecResult, bytes]:
        if self._closed:
            raise RuntimeError("sandbox is closed")
        t, argv, data = exec_plan(self.deadline, command, stdin, timeout)
        if t <= 0:
            return deadline_passed(), b""
        return await asyncio.to_thread(self._exec_blocking, argv, data, t, cap)

    def _exec_blocking(self, argv: list[str], stdin: bytes | None, t: float, cap: int) -> tuple[ExecResult, bytes]:
        api = docker_client().api
        token = uuid.uuid4().hex[:10]
        # `timeout` (own process group) kills the command's whole group at t; the pid file lets
        # the host kill that group early when the output cap is hit.
        wrapped = ["/bin/sh", "-c",
                   f'umask 002; echo $$ > /tmp/.exec-{token}; exec timeout -s KILL {math.ceil(t)} "$@"', "sh", *argv]
        # As the agent's uid: never the tool server's (its stdin, memory, signals, secret).
        eid = api.exec_create(self.container.id, wrapped, stdin=True, stdout=True, stderr=True,
                              workdir=WORKSPACE, user=f"{AGENT_UID}:{AGENT_UID}")["Id"]
        sock = api.exec_start(eid, socket=True)
        raw = getattr(sock, "_sock", sock)
        start = time.monotonic()
        bufs = {1: bytearray(), 2: bytearray()}
        truncated = timed_out = False
        try:
            with contextlib.suppress(OSError):
                if stdin:
                    raw.settimeout(t)
                    raw.sendall(stdin)
                raw.shutdown(socket.SHUT_WR)
            # Backstop: `timeout` inside normally ends the stream at t.
            for stream, chunk in read_frames(raw, start + t + 5):
                if stream is None:
                    timed_out = True
                    break
                buf = bufs.get(stream, bufs[2])
                room = cap - len(buf)
                if len(chunk) > room:
                    buf += chunk[:max(room, 0)]
                    truncated = True
                    break
                buf += chunk
        finally:
            # Shut the socket down, not just close our handle: the HTTP response still holds
            # it, and a connection left open but unread makes dockerd block writing the rest of
            # the output -- which stalled every later exec in that container.
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                sock.close()
            if truncated or timed_out:
                self._kill_exec(eid, token)
        code = None
        for _ in range(50):
            info = api.exec_inspect(eid)
            if not info.get("Running"):
                code = info.get("ExitCode")
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - start
        if code in (124, 137) and elapsed >= t - 0.5 and not truncated:
            timed_out = True
        if truncated and code == 126:
            code = 137  # dockerd reports 126 when we hang up on the output; the command was killed
        out = bytes(bufs[1])
        return ExecResult(stdout=out.decode(errors="replace"), stderr=bytes(bufs[2]).decode(errors="replace"),
                          exit_code=code, timed_out=timed_out, truncated=truncated), out

    def _kill_exec(self, eid: str, token: str) -> None:
        """Kill an exec's whole process group: from the host when dockerd shares our pid
        namespace (fast, works while the container is busy), else from inside, detached."""
        pid = (docker_client().api.exec_inspect(eid) or {}).get("Pid") or 0
        if pid and kill_group_if(pid, "timeout"):
            return
        with contextlib.suppress(Exception):
            # As the agent: whatever the agent wrote into the pid file, only its own processes die.
            self.container.exec_run(["/bin/sh", "-c", f"kill -9 -$(cat /tmp/.exec-{token})"], detach=True,
                                    user=f"{AGENT_UID}:{AGENT_UID}")

    # -- files ------------------------------------------------------------------------------
    async def read_file(self, path: str) -> bytes:
        p = container_path(path)
        # Resolve symlinks inside the container and refuse targets outside the workspace.
        result, out = await self._exec_raw(
            ["/bin/sh", "-c", f'r=$(readlink -f "$1") && case "$r" in {WORKSPACE}|{WORKSPACE}/*) cat "$r";; '
                              f'*) echo "outside the workspace" >&2; exit 3;; esac', "sh", p],
            None, 60, file_bytes(self.spec))
        if result.exit_code == 3:
            raise PermissionError(f"path {path!r} escapes the workspace")
        if result.exit_code != 0:
            raise FileNotFoundError(f"{path}: {result.stderr.strip()}")
        return out

    async def write_file(self, path: str, data: bytes) -> None:
        self.tainted = True
        p = container_path(path)
        result, _ = await self._exec_raw(
            ["/bin/sh", "-c", f'mkdir -p "$(dirname "$1")" && r=$(readlink -f "$1") && case "$r" in '
                              f'{WORKSPACE}/*) cat > "$r";; *) echo "outside the workspace" >&2; exit 3;; esac',
             "sh", p], data, 60, 65536)
        if result.exit_code == 3:
            raise PermissionError(f"path {path!r} escapes the workspace")
        if result.exit_code != 0:
            raise OSError(f"write {path} failed: {result.stderr.strip()}")

    # -- lifecycle (state calls: ServerState) ----------------------------------------------
    def alive(self) -> bool:
        try:
            self.container.reload()
            return self.container.status == "running"
        except Exception:
            return False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def remove() -> None:
            import docker.errors

            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                docker_client().containers.get(self.name).remove(force=True)

        await asyncio.to_thread(remove)
        self._remove_secret()
        if self._owner is not None:
            await self._owner.close()
        if self._entry is not None:
            unrecord(self._entry)


async def create_docker(spec: SandboxSpec) -> DockerSandbox:
    ok, why = await asyncio.to_thread(docker_available)
    if not ok:
        raise RuntimeError(why)
    image = spec.image or DEFAULT_IMAGE
    if spec.options.get("ensure_image", True):
        await asyncio.to_thread(ensure_image, image)
    return await started(DockerSandbox(spec, uuid.uuid4().hex[:12], image))
