"""Unique sandbox identities: process-tier uids are claimed under a lock (never two live
sandboxes on one uid, even when the random draw collides), and closing one sandbox never
touches another's processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess

import pytest

from tests.sandbox.conftest import make_spec, needs_bwrap, run
from toolzoo.sandbox import identity
from toolzoo.sandbox.base import create_sandbox
from toolzoo.sandbox.limits import pids_where, proc_info

ROOT = os.geteuid() == 0


def _claim_many(n: int, q, done) -> None:
    q.put(identity.allocate_uids(n))
    done.wait(60)  # stay alive: a claim whose driver has exited may rightly be reclaimed


def test_concurrent_allocations_never_share_a_uid(monkeypatch, tmp_path):
    """8 processes claim 40 uids each at once, from a span of only 400 (collisions in the draw
    are certain): every claim is distinct and every one is on disk."""
    monkeypatch.setenv("TOOLZOO_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(identity, "UID_SPAN", 400)
    ctx = multiprocessing.get_context("fork")
    q, done = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_claim_many, args=(40, q, done)) for _ in range(8)]
    for p in procs:
        p.start()
    got = [q.get(timeout=60) for _ in procs]
    done.set()
    for p in procs:
        p.join(30)
    flat = [u for g in got for u in g]
    assert len(flat) == 320 and len(set(flat)) == 320
    assert {int(p.name) for p in (tmp_path / "uids").iterdir() if p.name.isdigit()} == set(flat)


def test_a_live_claim_or_a_live_process_keeps_its_uid(monkeypatch, tmp_path):
    monkeypatch.setenv("TOOLZOO_STATE_DIR", str(tmp_path))
    draws = iter([5, 5, 6, 6, 7])  # the draw repeats; the allocator must not
    monkeypatch.setattr(identity.secrets, "randbelow", lambda n: next(draws))
    monkeypatch.setattr(identity, "_uid_in_use", lambda uid: uid == identity.UID_BASE + 6)
    first = identity.allocate_uids(1)
    second = identity.allocate_uids(1)
    assert first == [identity.UID_BASE + 5] and second == [identity.UID_BASE + 7]
    assert identity.claimed(first[0]) and identity.claimed(second[0])
    identity.release_uids(first)
    assert not identity.claimed(first[0])


def test_a_dead_drivers_claim_is_reclaimed(monkeypatch, tmp_path):
    monkeypatch.setenv("TOOLZOO_STATE_DIR", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    d = tmp_path / "uids"
    d.mkdir()
    (d / str(identity.UID_BASE + 3)).write_text(f'{{"pid": {dead.pid}, "start": "1"}}')
    monkeypatch.setattr(identity.secrets, "randbelow", lambda n: 3)
    assert identity.allocate_uids(1) == [identity.UID_BASE + 3]


@needs_bwrap
def test_concurrent_sandboxes_get_distinct_uids_and_closing_one_spares_the_rest(run_id, monkeypatch):
    if not ROOT:
        pytest.skip("per-sandbox uids need a root driver")
    # Force the draw to collide: every sandbox would get the same two uids without the claims.
    real = identity.secrets.randbelow
    calls = {"n": 0}

    def colliding(n: int) -> int:
        calls["n"] += 1
        return 17 if calls["n"] % 3 else real(n)

    monkeypatch.setattr(identity.secrets, "randbelow", colliding)

    async def main():
        spec = make_spec("process", run_id)
        boxes = await asyncio.gather(*(create_sandbox(spec.model_copy(update={"episode_id": f"e{i}"}))
                                       for i in range(6)))
        try:
            uids = [u for b in boxes for u in (b.uid, b.server_uid)]
            assert len(set(uids)) == len(uids) == 12
            # Each sandbox gets a long-lived process of its own agent uid (a jail that sleeps).
            sleepers = [subprocess.Popen(b._prefix(ttl_s=None, cpu_seconds=100) + ["sleep", "300"],
                                         start_new_session=True) for b in boxes]
            await asyncio.sleep(1.0)
            for b in boxes:
                assert pids_where(lambda i, u=b.uid: i["uid"] == u), "each sandbox has a live agent process"
            await boxes[0].close()
            assert not pids_where(lambda i: i["uid"] in (boxes[0].uid, boxes[0].server_uid))
            assert not identity.claimed(boxes[0].uid) and not identity.claimed(boxes[0].server_uid)
            for b in boxes[1:]:
                assert pids_where(lambda i, u=b.uid: i["uid"] == u), f"closing another sandbox killed {b.uid}'s"
                assert b.alive() and await b.session.state_hash()
                assert identity.claimed(b.uid)
        finally:
            for b in boxes[1:]:
                await b.close()
            for s in sleepers:
                s.wait(10)
        return [s.returncode for s in sleepers]

    codes = run(main(), timeout=240)
    assert all(c is not None for c in codes)


@needs_bwrap
def test_close_never_kills_a_reused_pid(run_id):
    """The server's recorded group id reused by an unrelated process: close leaves it alone."""
    async def main():
        sb = await create_sandbox(make_spec("process", run_id))
        stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
        try:
            os.kill(sb.pid, signal.SIGKILL)  # the server dies ...
            await asyncio.sleep(0.3)
            sb.pid = stranger.pid  # ... and its pid (and group id) now belong to someone else
            await sb.close()
            info = proc_info(stranger.pid)
            assert info is not None and info["state"] != "Z"
        finally:
            stranger.kill()
            stranger.wait(5)

    run(main(), timeout=120)
