"""Who runs what inside a sandbox: unique host uids, and the drop from the tool server's uid
to the agent's.

Two identities per sandbox (when the driver is root): the tool server runs as ``server_uid``,
the code an agent runs (``exec``, and the commands the server's code tools start) as
``agent_uid``. The kernel then keeps agent code away from the server: it cannot open the
server's ``/proc/<pid>/fd/0`` or read its memory or environment (ptrace access needs the same
uid), cannot signal it, and cannot read the admin secret file (mode 0400, the server's uid).
Both share the group ``agent_uid`` so the workspace (setgid, umask 002) is writable by both.

Uids are claimed, not guessed: :func:`allocate_uids` takes a lock, skips any uid that has a
live claim or a live process, and writes a claim file (driver pid and start time) that
:func:`release_uids` removes at close. So two live sandboxes never share a uid, and a
teardown that kills "its" uid's processes can only ever reach its own sandbox. A claim whose
driver died is reclaimed once no process of that uid is left (``toolzoo sandbox gc`` kills
those first).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from pathlib import Path

from toolzoo.sandbox.reaper import process_start_time, state_dir

UID_BASE, UID_SPAN = 200_000, 1_000_000
ENV_AGENT_UID = "TOOLZOO_AGENT_UID"  # set in the tool server's environment (a number, not a secret)
SERVER_CAPS = "setuid,setgid,kill"  # what the server keeps: start agent code as agent_uid, and stop it


def _claims_dir() -> Path:
    d = state_dir() / "uids"
    d.mkdir(parents=True, exist_ok=True)
    return d


def secrets_dir() -> Path:
    """Where admin secret files wait for their server (root-only directory)."""
    d = state_dir() / "secrets"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def _uid_in_use(uid: int) -> bool:
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{name}").st_uid == uid:
                    return True
    return False


def _claim_live(path: Path) -> bool:
    try:
        claim = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    start = process_start_time(int(claim.get("pid", 0)))
    return bool(start) and start == claim.get("start")


def allocate_uids(n: int = 2) -> list[int]:
    """``n`` host uids no live sandbox holds and no process runs as, claimed for this driver."""
    me = os.getpid()
    claim = json.dumps({"pid": me, "start": process_start_time(me)})
    d = _claims_dir()
    out: list[int] = []
    with open(d / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # claims are checked and written as one step
        try:
            while len(out) < n:
                uid = UID_BASE + secrets.randbelow(UID_SPAN)
                path = d / str(uid)
                if uid in out or (path.exists() and _claim_live(path)) or _uid_in_use(uid):
                    continue
                path.write_text(claim)
                out.append(uid)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out


def release_uids(uids: list[int]) -> None:
    """Give claimed uids back (after their processes are gone)."""
    d = _claims_dir()
    for uid in uids:
        with contextlib.suppress(FileNotFoundError):
            (d / str(uid)).unlink()


def claimed(uid: int) -> bool:
    path = _claims_dir() / str(uid)
    return path.exists() and _claim_live(path)


def server_privs(server_uid: int, agent_uid: int, *, bounding: bool = True) -> list[str]:
    """``setpriv`` arguments that run the tool server as ``server_uid`` (group ``agent_uid``)
    keeping only the capabilities it needs to start and stop agent code as ``agent_uid``
    (``bounding``: also narrow the bounding set; a container whose capabilities are already
    just these lacks the CAP_SETPCAP that needs)."""
    caps = ",".join(f"+{c}" for c in SERVER_CAPS.split(","))
    return ["setpriv", f"--reuid={server_uid}", f"--regid={agent_uid}", "--clear-groups",
            f"--inh-caps=-all,{caps}", f"--ambient-caps=-all,{caps}",
            *([f"--bounding-set=-all,{caps}"] if bounding else []), "--no-new-privs"]


def agent_privs(agent_uid: int) -> list[str]:
    """``setpriv`` arguments for code an agent runs: its own uid, no capabilities at all."""
    return ["setpriv", f"--reuid={agent_uid}", f"--regid={agent_uid}", "--clear-groups",
            "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs"]


UMASK_002 = ["/bin/sh", "-c", 'umask 002 && exec "$@"', "sh"]  # files the other identity can write


def agent_prefix() -> list[str]:
    """The prefix a tool server puts before a command it runs for the agent: a drop to the
    agent's uid when this server was started with one (``$TOOLZOO_AGENT_UID``), else nothing."""
    raw = os.environ.get(ENV_AGENT_UID)
    if not raw or not raw.isdigit() or int(raw) == os.getuid():
        return []
    return agent_privs(int(raw)) + UMASK_002
