"""Warm pools (leases, reset between leases, caps, drain) and the reaper's safety rules."""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import pytest

from toolzoo.sandbox.pool import PoolConfig, SandboxPool
from toolzoo.sandbox.reaper import RegistryEntry, entries, gc, record
from tests.sandbox.conftest import NOTHING, leftovers, make_spec, needs_bwrap, run

pytestmark = [pytest.mark.timeout(180)]


@needs_bwrap
def test_pool_reuses_resets_and_drains(run_id):
    async def go():
        pool = SandboxPool(PoolConfig(warm=2, max_leases=2), run_id=run_id)
        spec = make_spec("process", run_id)
        await pool.prewarm(spec)
        assert pool.stats()["idle"] == 2
        lease = await pool.acquire(spec)
        sb = lease.sandbox
        h0 = await lease.session.state_hash()
        snap = await sb.snapshot()
        oid = sorted(k for k, o in snap["orders"].items() if o["status"] == "delivered")[0]
        await lease.session.call_tool("refund_order", {"order_id": oid})
        assert await lease.session.state_hash() != h0
        await pool.release(lease)
        # The same sandbox comes back with fresh state; warm acquires start no process.
        times, seen = [], set()
        for _ in range(10):
            t0 = time.perf_counter()
            lease = await pool.acquire(spec)
            times.append(time.perf_counter() - t0)
            seen.add(id(lease.sandbox))
            assert await lease.session.state_hash() == h0
            await pool.release(lease)
        assert id(sb) in seen
        assert statistics.median(times) < 0.05
        # Another seed: reset to it.
        other = spec.model_copy(update={"seed": 7})
        lease = await pool.acquire(other)
        assert await lease.session.state_hash() != h0
        # A tainted sandbox (ran code) is discarded, not reused.
        await lease.sandbox.exec("true")
        tainted = lease.sandbox
        await pool.release(lease)
        assert tainted._closed
        # Concurrency cap: a third lease waits until one is released.
        a, b = await pool.acquire(spec), await pool.acquire(spec)
        waiter = asyncio.create_task(pool.acquire(spec))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        await pool.release(a)
        c = await asyncio.wait_for(waiter, 30)
        all_sbs = [b.sandbox, c.sandbox]
        await pool.close()
        return all_sbs

    sbs = run(go())
    for sb in sbs:
        assert leftovers(sb, run_id) == NOTHING
    assert entries(run_id) == []


def test_reaper_spares_live_drivers_and_foreign_processes(run_id, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    # An entry of a live driver (this process) whose pgid is a process that is NOT ours.
    entry = RegistryEntry(tier="process", sandbox_id="abc123", run_id=run_id, episode_id="e", deadline=time.time() + 60,
                          driver_pid=os.getpid(), pgid=1, workspace=str(ws))
    record(entry)
    rep = gc(None)  # no run given: live drivers' sandboxes are kept
    assert rep.skipped_live >= 1 and ws.exists()
    rep = gc(run_id)  # an explicit run is removed -- but pid 1 is not ours and survives
    assert rep.registry_entries_removed == 1 and rep.process_groups_killed == 0
    assert not ws.exists()
    assert os.path.exists("/proc/1")
    # A dead driver's entry is reaped without naming the run; an expired one only with expired=True.
    dead = entry.model_copy(update={"driver_pid": 2 ** 22 - 3, "sandbox_id": "dead01", "workspace": None})
    expired = entry.model_copy(update={"sandbox_id": "exp001", "deadline": time.time() - 1, "workspace": None})
    record(dead)
    record(expired)
    rep = gc(None)
    assert {e.sandbox_id for _, e in entries(run_id)} == {"exp001"}
    rep = gc(None, expired=True)
    assert entries(run_id) == []
