"""The conformance suite every sandbox tier passes (``pytest -m conformance``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from toolzoo.sandbox import create_sandbox
from toolzoo.sandbox.base import SandboxUnsupported
from toolzoo.sandbox.reaper import gc
from tests.sandbox.conftest import BACKENDS, NOTHING, leftovers, make_spec, run

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(180)]


def _delivered(snapshot: dict) -> str:
    return sorted(k for k, o in snapshot["orders"].items() if o["status"] == "delivered")[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_tools_errors_and_state(backend, run_id):
    async def go():
        sb = await create_sandbox(make_spec(backend, run_id))
        try:
            assert sb.isolation  # always says what was obtained
            assert sb.deadline > time.time()
            tools = await sb.session.list_tools()
            names = {t.name for t in tools}
            assert {"get_order", "refund_order"} <= names
            assert not any(n.startswith("_toolzoo_") for n in names)  # admin tools hidden
            snap = await sb.snapshot()
            oid = _delivered(snap)
            got = await sb.session.call_tool("get_order", {"order_id": oid}, call_id="c1")
            assert not got.is_error and got.call_id == "c1" and got.structured["id"] == oid
            before = await sb.session.state_hash()
            bad = await sb.session.call_tool("refund_order", {"order_id": "no-such-order"})
            assert bad.is_error and "no-such-order" in bad.content
            assert await sb.session.state_hash() == before  # a failed call changes nothing
            ok = await sb.session.call_tool("refund_order", {"order_id": oid})
            assert not ok.is_error and await sb.session.state_hash() != before
        finally:
            await sb.close()

    run(go())


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_state_across_tiers(backend, run_id):
    async def go():
        sb = await create_sandbox(make_spec(backend, run_id))
        ref = await create_sandbox(make_spec("inline", run_id))
        try:
            assert await sb.session.state_hash() == await ref.session.state_hash()
        finally:
            await sb.close()
            await ref.close()

    run(go())


@pytest.mark.parametrize("backend", BACKENDS)
def test_exec_and_files(backend, run_id):
    async def go():
        sb = await create_sandbox(make_spec(backend, run_id))
        try:
            if backend == "inline":
                with pytest.raises(SandboxUnsupported):
                    await sb.exec(["true"])
                with pytest.raises(SandboxUnsupported):
                    await sb.read_file("x")
                with pytest.raises(SandboxUnsupported):
                    await sb.write_file("x", b"")
                return
            await sb.write_file("sub/data.bin", b"\x00\x01hello\xff")
            assert await sb.read_file("sub/data.bin") == b"\x00\x01hello\xff"
            assert await sb.read_file("/workspace/sub/data.bin") == b"\x00\x01hello\xff"
            r = await sb.exec("cat sub/data.bin | wc -c; echo err >&2; exit 3")
            assert r.stdout.strip() == "8" and r.stderr.strip() == "err" and r.exit_code == 3
            assert not r.timed_out and not r.truncated
            r = await sb.exec(["python3", "-c", "import sys; print(sys.stdin.read()[::-1])"], stdin="abc")
            assert r.stdout.strip() == "cba" and r.exit_code == 0
            r = await sb.exec("echo made > made.txt")
            assert await sb.read_file("made.txt") == b"made\n"
            for bad in ("../escape", "/etc/passwd", "sub/../../x"):
                with pytest.raises(PermissionError):
                    await sb.read_file(bad)
                with pytest.raises(PermissionError):
                    await sb.write_file(bad, b"x")
            # A symlink pointing out of the workspace is no way out either.
            await sb.exec("ln -s /etc/passwd link")
            with pytest.raises(PermissionError):
                await sb.read_file("link")
        finally:
            await sb.close()

    run(go())


@pytest.mark.parametrize("backend", BACKENDS)
def test_snapshot_restore_round_trip(backend, run_id):
    async def go():
        sb = await create_sandbox(make_spec(backend, run_id))
        try:
            snap = await sb.snapshot()
            h0 = await sb.session.state_hash()
            oid = _delivered(snap)
            assert not (await sb.session.call_tool("refund_order", {"order_id": oid})).is_error
            assert await sb.session.state_hash() != h0
            assert await sb.restore(snap) == h0
            assert await sb.session.state_hash() == h0
            assert (await sb.snapshot()) == json.loads(json.dumps(snap))
        finally:
            await sb.close()

    run(go())


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_leaves_nothing(backend, run_id):
    async def go():
        sb = await create_sandbox(make_spec(backend, run_id))
        await sb.session.list_tools()
        if backend != "inline":
            await sb.write_file("f", b"x")
            assert leftovers(sb, run_id) != NOTHING  # it did exist
        await sb.close()
        await sb.close()  # idempotent
        return sb

    sb = run(go())
    assert leftovers(sb, run_id) == NOTHING


@pytest.mark.parametrize("backend", BACKENDS)
def test_deadline_kill(backend, run_id):
    if backend == "inline":
        pytest.skip("inline runs in the driver's process: there is nothing to kill at the deadline")

    async def go():
        sb = await create_sandbox(make_spec(backend, run_id, wall_time_s=8))
        try:
            assert sb.deadline - time.time() <= 8
            assert len(await sb.session.list_tools()) > 0
            t_end = sb.deadline + 10.0  # container/jail start lag under load
            while time.time() < t_end and sb.alive():
                time.sleep(0.2)
            assert not sb.alive(), "the sandbox outlived its deadline"
            # A stopped container is removed (--rm) a moment after it stops: allow that moment.
            key = "processes" if backend == "process" else "containers"
            for _ in range(25):
                if leftovers(sb, run_id)[key] == []:
                    break
                time.sleep(0.2)
            assert leftovers(sb, run_id)[key] == []
        finally:
            await sb.close()

    run(go())


_DRIVER = textwrap.dedent("""
    import asyncio, sys, time
    from toolzoo.sandbox import create_sandbox, SandboxSpec, SandboxLimits
    async def main():
        sb = await create_sandbox(SandboxSpec(backend=sys.argv[1], domain="retail_orders", run_id=sys.argv[2],
                                              episode_id="crash", limits=SandboxLimits(wall_time_s=300)))
        await sb.session.list_tools()
        if sys.argv[1] != "inline":
            await sb.write_file("left.txt", b"behind")
        print(sb.sandbox_id if hasattr(sb, "sandbox_id") else "-", flush=True)
        time.sleep(600)
    asyncio.run(main())
""")


@pytest.mark.parametrize("backend", BACKENDS)
def test_reap_after_driver_crash(backend, run_id, tmp_path):
    if backend == "inline":
        pytest.skip("inline leaves nothing outside the driver process")
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, backend, run_id], stdout=subprocess.PIPE,
                              env=os.environ.copy(), cwd=os.getcwd())
    try:
        sid = driver.stdout.readline().decode().strip()
        assert sid, "the driver did not create its sandbox"
        assert leftovers(sid, run_id)["registry"] == [sid]
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    report = gc(run_id)
    assert report.scanned == 1 and report.registry_entries_removed == 1
    if backend == "process":
        assert report.workspaces_removed == 1
    time.sleep(0.3)
    assert leftovers(sid, run_id) == NOTHING
    assert gc(run_id).scanned == 0  # idempotent
