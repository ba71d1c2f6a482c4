"""A pytest plugin (``-p toolzoo.testing.suite_guard``; toolzoo's own suite loads it): when
pytest reports, the run must be able to end.

A test that leaks a worker thread blocked forever (interpreter exit joins executor threads)
or a child process (it can hold the caller's output pipe open) turns a finished suite into a
CI timeout with no message. So after every fixture is torn down, this names what is still
alive, fails the session for it, kills the leaked processes, and -- if threads are stuck --
dumps their stacks and exits instead of hanging.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time

import pytest

# Time for threads that are merely finishing (a pool shutting down, a close in flight).
GRACE_S = float(os.environ.get("TOOLZOO_GUARD_GRACE_S", "30"))


def _children_of(pid: int) -> list[int]:
    """Live (non-zombie) descendants of ``pid`` from /proc."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parent[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        frontier += kids
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:200]
    except OSError:
        return "?"


def _stuck_threads() -> list[threading.Thread]:
    deadline = time.monotonic() + GRACE_S
    alive = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for t in alive:
        t.join(max(0.0, deadline - time.monotonic()))
    return [t for t in alive if t.is_alive()]


_stuck: list[threading.Thread] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """After every fixture's teardown: name, kill and fail for what is left."""
    if sys.platform != "linux" or getattr(session.config, "workerinput", None) is not None:
        return
    _stuck[:] = _stuck_threads()
    leaked = _children_of(os.getpid())
    if not _stuck and not leaked:
        return
    out = sys.__stderr__
    out.write("\n=== toolzoo suite guard: the session left things running ===\n")
    for pid in leaked:
        out.write(f"leaked process {pid}: {_cmdline(pid)}\n")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if _stuck:
        out.write(f"stuck threads: {', '.join(t.name for t in _stuck)} (stacks follow the summary)\n")
    out.flush()
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """The summary is printed: if threads are still stuck, interpreter exit would join them
    forever -- show their stacks and leave now, failing."""
    if not any(t.is_alive() for t in _stuck):
        return
    out = sys.__stderr__
    faulthandler.dump_traceback(file=out, all_threads=True)
    out.flush()
    sys.stdout.flush()
    os._exit(int(pytest.ExitCode.TESTS_FAILED))
