"""Shared helpers for tiers that run host processes: the bubblewrap jail command line,
resource limits, output capture with caps, and killing process groups.

Why each piece is here:
- rlimits are applied with ``prlimit`` *inside* the jail (the MCP SDK spawns the tool server
  itself, so there is no ``preexec_fn`` to hook), after ``setpriv`` has dropped privileges.
- When the driver runs as root, every sandbox runs as its own unprivileged host uid: the
  kernel counts RLIMIT_NPROC per real uid and exempts root, so a per-sandbox uid is what makes
  the process cap (fork-bomb containment) real and per sandbox. As a normal user the jail
  runs as that user and NPROC counts all of the user's processes (documented).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import sys
import sysconfig
from pathlib import Path

from toolzoo.sandbox.base import ExecResult, SandboxLimits, SandboxSpec

WORKSPACE = "/workspace"
FILE_BYTES_DEFAULT = 64 * 1024 * 1024  # RLIMIT_FSIZE when options carry no file_bytes
UID_BASE, UID_SPAN = 200_000, 1_000_000  # per-sandbox host uids (root driver only)
SECRET_PATH = "/run/toolzoo/admin-secret"  # the admin secret inside a tool server's jail or container


def file_bytes(spec: SandboxSpec) -> int:
    """The largest file a sandbox may hold: its RLIMIT_FSIZE, and the cap on a whole-file read."""
    return int(spec.options.get("file_bytes", FILE_BYTES_DEFAULT))


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def running_as_root() -> bool:
    return os.geteuid() == 0


def sandbox_uid() -> int:
    """A fresh host uid for one sandbox (only used when the driver is root), claimed so no
    other live sandbox gets it (see ``identity.allocate_uids``; release it at close)."""
    from toolzoo.sandbox.identity import allocate_uids

    return allocate_uids(1)[0]


def _python_roots() -> list[str]:
    """Directories the interpreter and the installed packages live in (bound read-only)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    real = os.path.realpath(sys.executable)
    roots.add(str(Path(real).parent.parent))
    import toolzoo

    # The toolzoo source (editable installs live outside site-packages).
    roots.add(str(Path(toolzoo.__file__).resolve().parent))
    out: list[str] = []
    for r in sorted(roots, key=len):
        r = os.path.realpath(r)
        if any(r == o or r.startswith(o + "/") for o in out):
            continue
        if r in ("/", "/usr") or not os.path.exists(r):
            continue
        out.append(r)
    return out


def _system_binds() -> list[str]:
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/") / d
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), f"/{d}"]
        elif p.is_dir():
            args += ["--ro-bind", str(p), f"/{d}"]
    # Only the bits of /etc a Python process needs; nothing with secrets (no shadow, no ssl keys).
    args += ["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/etc/ssl"]
    for f in ("passwd", "group", "nsswitch.conf", "localtime", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
              "alternatives", "ssl/certs", "mime.types", "hosts"):
        p = Path("/etc") / f
        if p.exists():
            args += ["--ro-bind", str(p), str(p)]
    return args


def bwrap_prefix(workspace: str, limits: SandboxLimits, *, uid: int | None, extra_ro: list[str] = (),
                 file_bytes: int = FILE_BYTES_DEFAULT, cpu_seconds: float | None = None,
                 ttl_s: float | None = None, privs: list[str] | None = None,
                 secret_file: str | None = None) -> list[str]:
    """The command prefix that runs what follows inside a fresh jail: no network (a new net
    namespace with only a down loopback), new pid/ipc/uts namespaces, read-only system and
    Python, private /tmp, ``workspace`` writable at /workspace, limits applied, and (with
    ``ttl_s``) killed after its time to live. ``privs`` replaces the default drop to ``uid``
    (the tool server keeps a few capabilities, see ``identity.server_privs``); ``secret_file``
    is shown read-only at :data:`SECRET_PATH` (only in the tool server's jail)."""
    bw = bwrap_path()
    assert bw is not None
    args = [bw, "--die-with-parent", "--new-session"]
    if uid is not None:
        # Root driver: no user namespace, so setpriv below can drop to the sandbox's own uid.
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        args += ["--unshare-all"]
    args += _system_binds()
    # Home dirs (e.g. /root holding a pyenv) are masked by a tmpfs; only Python roots show through.
    args += ["--tmpfs", "/root", "--tmpfs", "/home"]
    # The private /tmp comes before the read-only roots, so a venv or checkout that lives under
    # /tmp (a CI clone, say) is bound on top of it instead of hidden by it.
    args += ["--perms", "1777", "--tmpfs", "/tmp"]
    roots = _python_roots() + list(extra_ro)
    # bwrap creates missing parents 0700, unreadable for the sandbox uid: make them 0755.
    parents: list[str] = []
    for root in roots:
        for anc in reversed(Path(root).parents):
            a = str(anc)
            if a not in ("/", "/usr", "/root", "/home", "/tmp") and a not in parents and a not in roots:
                parents.append(a)
    for a in parents:
        args += ["--perms", "0755", "--dir", a]
    for root in roots:
        args += ["--ro-bind", root, root]
    if secret_file is not None:
        args += ["--perms", "0755", "--dir", "/run", "--perms", "0755", "--dir", os.path.dirname(SECRET_PATH),
                 "--ro-bind", secret_file, SECRET_PATH]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--bind", workspace, WORKSPACE, "--chdir", WORKSPACE,
             "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
             "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "MALLOC_ARENA_MAX", "2",
             "--hostname", "sandbox", "--"]
    if privs is not None:
        args += privs
    elif uid is not None:
        args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    args += prlimit_args(limits, file_bytes=file_bytes, cpu_seconds=cpu_seconds)
    if ttl_s is not None:
        args += ["timeout", "-s", "KILL", f"{max(1, math.ceil(ttl_s))}"]
    return args


def prlimit_args(limits: SandboxLimits, *, file_bytes: int, cpu_seconds: float | None) -> list[str]:
    cpu = max(1, math.ceil(cpu_seconds if cpu_seconds is not None else limits.wall_time_s * limits.cpu))
    mem = limits.memory_mb * 1024 * 1024
    return ["prlimit", f"--cpu={cpu}", f"--as={mem}", f"--nproc={limits.pids}",
            f"--nofile={limits.open_files}", f"--fsize={file_bytes}", "--core=0", "--"]


def unisolated_env() -> dict[str, str]:
    return {"PYTHONDONTWRITEBYTECODE": "1", "MALLOC_ARENA_MAX": "2"}


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_uid(uid: int) -> int:
    """SIGKILL every process whose real uid is ``uid`` (a per-sandbox uid). Returns the count."""
    n = 0
    for pid in pids_where(lambda st: st.get("uid") == uid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            n += 1
    return n


def proc_info(pid: int) -> dict | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        uid = os.stat(f"/proc/{pid}").st_uid
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = stat[stat.rfind(")") + 2:].split()
    return {"pid": pid, "state": rest[0], "ppid": int(rest[1]), "pgid": int(rest[2]), "cmdline": cmd, "uid": uid}


def pids_where(pred) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = proc_info(int(name))
            if info is not None and info["state"] != "Z" and pred(info):
                out.append(int(name))
    return out


def find_marked(marker: str) -> list[int]:
    """Live processes whose command line carries ``marker`` (a sandbox's unique workspace path)."""
    me = os.getpid()
    return [p for p in pids_where(lambda i: marker in i["cmdline"]) if p != me]


def kill_tree(root: int) -> int:
    """SIGKILL ``root`` and every descendant, found before any dies. A jailed command that
    dropped privileges loses its parent-death signal, so killing the jail's outer process
    alone can leave it running (writing into a pipe nobody reads); its process tree cannot
    hide from this."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = proc_info(int(name))
            if info is not None:
                children.setdefault(info["ppid"], []).append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    killed = 0
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


async def run_capped(argv: list[str], *, stdin: bytes | None, timeout: float, output_bytes: int,
                     env: dict[str, str] | None = None, cwd: str | None = None) -> tuple[ExecResult, bytes]:
    """Run ``argv`` in its own process group; capture stdout/stderr up to ``output_bytes`` each
    (over the cap: kill the group, ``truncated``); kill the group at ``timeout`` (``timed_out``).
    Returns the result and raw stdout bytes (for binary file reads)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True, env=env, cwd=cwd)
    bufs = {"out": bytearray(), "err": bytearray()}
    truncated = False

    async def pump(stream: asyncio.StreamReader, key: str) -> None:
        nonlocal truncated
        while chunk := await stream.read(65536):
            room = output_bytes - len(bufs[key])
            if len(chunk) > room:
                bufs[key] += chunk[:max(room, 0)]
                if not truncated:
                    truncated = True
                    kill_tree(proc.pid)  # endless output: stop it rather than drain forever
                    kill_group(proc.pid)
                # Keep reading (and dropping) to EOF: a stream left unread pauses its pipe, the
                # pipe then never reports EOF, and ``proc.wait()`` (which in 3.11 waits for every
                # pipe to close) would only return at the timeout.
                continue
            bufs[key] += chunk

    async def feed() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if stdin:
                proc.stdin.write(stdin)
                await proc.stdin.drain()
            proc.stdin.close()

    timed_out = False
    tasks = [asyncio.ensure_future(pump(proc.stdout, "out")), asyncio.ensure_future(pump(proc.stderr, "err")),
             asyncio.ensure_future(feed())]
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        timed_out = True
    finally:
        kill_tree(proc.pid)  # anything the command left running, in or out of its group
        kill_group(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        # A grandchild outside the group could hold the pipes open; don't wait on it forever.
        _, pending = await asyncio.wait(tasks, timeout=1.0)
        for t in pending:
            t.cancel()
    code = proc.returncode
    raw = bytes(bufs["out"])
    return ExecResult(stdout=raw.decode(errors="replace"), stderr=bytes(bufs["err"]).decode(errors="replace"),
                      exit_code=code, timed_out=timed_out, truncated=truncated), raw


def confine(root: str, path: str) -> str:
    """Map a workspace path (relative, or absolute under /workspace) to a host path inside
    ``root``; reject anything that escapes it, including through symlinks."""
    p = path
    if p == WORKSPACE or p.startswith(WORKSPACE + "/"):
        p = p[len(WORKSPACE):].lstrip("/")
    if os.path.isabs(p):
        raise PermissionError(f"path {path!r} is outside the workspace")
    real_root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(real_root, p))
    if full != real_root and not full.startswith(real_root + os.sep):
        raise PermissionError(f"path {path!r} escapes the workspace")
    return full


def container_path(path: str) -> str:
    """Normalise a workspace path for a container; reject paths escaping /workspace (symlinks
    are resolved by the container side, which is itself confined)."""
    import posixpath

    p = path if path.startswith("/") else posixpath.join(WORKSPACE, path)
    p = posixpath.normpath(p)
    if p != WORKSPACE and not p.startswith(WORKSPACE + "/"):
        raise PermissionError(f"path {path!r} is outside the workspace")
    return p


class OwnedSession:
    """An MCPSession opened and closed by one dedicated task. The SDK's client holds anyio
    cancel scopes that must be exited by the task that entered them; sandboxes are created in
    one task (a pool's refiller) and closed in another (whoever releases), so the session
    lives in its own task and ``close`` just signals it."""

    def __init__(self, server, session_cls=None, *, admin_secret: str | None = None) -> None:
        from toolzoo.tools.session import MCPSession

        cls = session_cls or MCPSession
        self.session = cls(server, admin_secret=admin_secret) if admin_secret else cls(server)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def open(self):
        loop = asyncio.get_running_loop()
        ready: asyncio.Future = loop.create_future()

        async def owner() -> None:
            try:
                await self.session.open()
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
                return
            ready.set_result(None)
            await self._stop.wait()
            await self.session.close()

        self._task = asyncio.create_task(owner())
        await ready
        return self.session

    async def close(self) -> None:
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except (asyncio.TimeoutError, Exception):
            self._task.cancel()
