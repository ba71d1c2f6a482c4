"""Escape and containment (``pytest -m escape``) on the tiers that run code.

Network: a TCP listener on the host's 127.0.0.1 must be unreachable from inside, and the
sandbox must have no interface but loopback and no route. No packet is ever sent to any
outside address: "no way out" is shown by interfaces and routes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from toolzoo.sandbox import create_sandbox
from tests.sandbox.conftest import CODE_BACKENDS, NOTHING, leftovers, make_spec, run

pytestmark = [pytest.mark.escape, pytest.mark.timeout(240)]

PROBE_NET = """
import socket, sys
port = int(sys.argv[1])
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    print("CONNECTED")
except OSError as e:
    print("REFUSED", type(e).__name__)
ifaces = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
routes = [l for l in open("/proc/net/route").read().splitlines()[1:] if l.strip()]
print("IFACES", ",".join(ifaces))
print("ROUTES", len(routes))
"""


@pytest.fixture(params=CODE_BACKENDS)
def sandbox_factory(request, run_id):
    made = []

    async def make(**limits):
        sb = await create_sandbox(make_spec(request.param, run_id, **limits))
        made.append(sb)
        return sb

    yield make
    for sb in made:
        # A test stopped by its time bound never reached its own close (idempotent otherwise).
        with contextlib.suppress(Exception):
            run(sb.close(), 60)
        assert leftovers(sb, run_id) == NOTHING, "a sandbox left something behind"


def test_network_egress_fails(sandbox_factory):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    port = server.getsockname()[1]

    async def go():
        sb = await sandbox_factory()
        try:
            r = await sb.exec(["python3", "-c", PROBE_NET, str(port)], timeout=30)
        finally:
            await sb.close()
        return r

    try:
        r = run(go())
        # Nothing reached the host's listener.
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    assert r.exit_code == 0, r
    assert "REFUSED" in r.stdout and "CONNECTED" not in r.stdout
    ifaces = r.stdout.split("IFACES ")[1].split()[0].split(",")
    assert set(ifaces) <= {"lo"}, f"interfaces besides loopback: {ifaces}"
    assert "ROUTES 0" in r.stdout, "the sandbox has a route out"


def test_writes_outside_workspace_fail(sandbox_factory):
    async def go():
        sb = await sandbox_factory()
        try:
            results = {}
            for target in ("/x", "/usr/x", "/etc/x", "/root/x", "/home/x", "/bin/x"):
                r = await sb.exec(f"echo pwned > {target}")
                results[target] = r.exit_code
            ok = await sb.exec("echo fine > /workspace/ok && echo fine > /tmp/scratch && cat /workspace/ok")
            return results, ok
        finally:
            await sb.close()

    results, ok = run(go())
    assert all(code != 0 for code in results.values()), results
    assert ok.exit_code == 0 and ok.stdout == "fine\n"


def test_fork_bomb_contained(sandbox_factory):
    async def go():
        sb = await sandbox_factory(pids=32)
        try:
            t0 = time.monotonic()
            r = await sb.exec(["python3", "-c", "import os\nwhile True:\n    os.fork()"], timeout=8)
            after = await sb.exec("echo alive")  # the sandbox itself still works
            tools = await sb.session.list_tools()
            return r, time.monotonic() - t0, after, tools
        finally:
            await sb.close()

    r, dt, after, tools = run(go())
    assert r.timed_out or r.exit_code != 0, r
    assert dt < 30
    assert after.stdout == "alive\n" and tools


def test_memory_bomb_contained(sandbox_factory):
    async def go():
        sb = await sandbox_factory(memory_mb=256)
        try:
            r = await sb.exec(["python3", "-c", "x = []\nwhile True:\n    x.append(bytearray(16 << 20))"],
                              timeout=20)
            return r, await sb.exec("echo alive")
        finally:
            await sb.close()

    r, after = run(go())
    assert r.exit_code != 0 and not r.timed_out, r  # MemoryError / OOM kill, well before the timeout
    assert after.stdout == "alive\n"


def test_endless_output_truncated(sandbox_factory):
    async def go():
        sb = await sandbox_factory(output_bytes=50_000)
        try:
            t0 = time.monotonic()
            r = await sb.exec("yes toolzoo", timeout=30)
            return r, time.monotonic() - t0
        finally:
            await sb.close()

    r, dt = run(go())
    assert r.truncated and len(r.stdout) == 50_000, (r.truncated, len(r.stdout))
    assert dt < 20  # stopped at the cap, not at the timeout


def test_sleep_forever_times_out(sandbox_factory):
    async def go():
        sb = await sandbox_factory()
        try:
            t0 = time.monotonic()
            r = await sb.exec("sleep 100000 & sleep 100000", timeout=1.5)
            dt = time.monotonic() - t0
            later = await sb.exec("ps -eo comm 2>/dev/null || ls /proc | grep -c '^[0-9]'")
            return r, dt, later
        finally:
            await sb.close()

    r, dt, later = run(go())
    assert r.timed_out and r.exit_code != 0, r
    assert dt < 10
    assert "sleep" not in later.stdout  # the background sleep died with its command


def test_harness_survives_concurrent_abuse(sandbox_factory):
    """Several hostile commands at once in one sandbox; the event loop stays responsive."""

    async def go():
        sb = await sandbox_factory(output_bytes=20_000)
        try:
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.05)
                    ticks += 1

            t = asyncio.create_task(ticker())
            rs = await asyncio.gather(sb.exec("yes", timeout=10), sb.exec("sleep 1000", timeout=1),
                                      sb.exec("cat /dev/zero", timeout=10))
            t.cancel()
            return rs, ticks
        finally:
            await sb.close()

    (yes, sleep, zero), ticks = run(go())
    assert yes.truncated and zero.truncated and sleep.timed_out
    assert ticks > 5


def test_exec_after_truncated_output_is_prompt(sandbox_factory):
    """Hanging up on a flood of output must free the sandbox: the next exec answers at once.
    (docker: a truncated exec's connection left open but unread made dockerd block on it, and
    every later exec in that container stalled.)"""

    async def go():
        sb = await sandbox_factory(output_bytes=10_000)
        try:
            flood = await asyncio.gather(sb.exec("yes", timeout=10), sb.exec("cat /dev/zero", timeout=10))
            t0 = time.monotonic()
            after = await asyncio.wait_for(sb.exec("echo ok", timeout=5), 30)
            return flood, after, time.monotonic() - t0
        finally:
            await sb.close()

    flood, after, dt = run(go())
    assert all(r.truncated for r in flood), flood
    assert after.stdout.strip() == "ok" and after.exit_code == 0, after
    assert dt < 10, dt
