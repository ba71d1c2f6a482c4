"""Shared fixtures for the sandbox suites.

``BACKENDS`` is the list the conformance suite runs over; a new tier appends a
``pytest.param("name", marks=...)`` here (with a skip mark naming why it cannot run).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid

import pytest

from toolzoo.sandbox.base import LABEL_PART_OF, LABEL_RUN, SandboxLimits, SandboxSpec


def _docker_reason() -> str | None:
    try:
        from toolzoo.sandbox.docker import docker_available, ensure_image

        ok, why = docker_available()
        if not ok:
            return why
        ensure_image()
        return None
    except Exception as exc:  # no SDK, no daemon, image build failed
        return f"docker unavailable: {type(exc).__name__}: {exc}"


DOCKER_SKIP = _docker_reason()
BWRAP_SKIP = None if shutil.which("bwrap") else "bubblewrap (bwrap) is not installed"

needs_docker = pytest.mark.skipif(DOCKER_SKIP is not None, reason=str(DOCKER_SKIP))
needs_bwrap = pytest.mark.skipif(BWRAP_SKIP is not None, reason=str(BWRAP_SKIP))

BACKENDS = [
    pytest.param("inline", id="inline"),
    pytest.param("process", id="process", marks=needs_bwrap),
    pytest.param("docker", id="docker", marks=needs_docker),
]
# Tiers that run code (exec, files, escape suite).
CODE_BACKENDS = [p for p in BACKENDS if p.values[0] != "inline"]


@pytest.fixture(autouse=True, scope="session")
def _state_dir(tmp_path_factory):
    # A private registry, so gc in these tests never touches another run's sandboxes.
    d = tmp_path_factory.mktemp("toolzoo-state")
    old = os.environ.get("TOOLZOO_STATE_DIR")
    os.environ["TOOLZOO_STATE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("TOOLZOO_STATE_DIR", None)
    else:
        os.environ["TOOLZOO_STATE_DIR"] = old


@pytest.fixture
def run_id() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


# ``bench/density.py --escape`` runs the escape suite while N sandboxes are open and sets this
# to the JSON of the limits its sandboxes run with, so the suite's sandboxes get exactly those
# (a test's own tighter limit, ``pids=32`` for the fork bomb, still applies on top).
LIMITS_ENV = "TOOLZOO_TEST_SANDBOX_LIMITS"


def base_limits() -> dict:
    raw = os.environ.get(LIMITS_ENV)
    if raw:
        return SandboxLimits.model_validate_json(raw).model_dump()
    return {"wall_time_s": 120.0, "memory_mb": 512, "pids": 64, "output_bytes": 100_000}


def make_spec(backend: str, run_id: str, **limits) -> SandboxSpec:
    lim = base_limits() | limits
    return SandboxSpec(backend=backend, domain="retail_orders", seed=1, run_id=run_id,
                       episode_id=f"ep-{uuid.uuid4().hex[:6]}", limits=SandboxLimits(**lim))


RUN_TIMEOUT_S = 150.0


def run(coro, timeout: float = RUN_TIMEOUT_S):
    """Run a test's coroutine with a bound of its own. A stalled sandbox test must fail here:
    pytest-timeout's alarm lands inside whichever asyncio task is running (which swallows it)
    and ``asyncio.run`` would then wait for every executor thread at shutdown. This loop is
    closed without waiting on threads, so a stuck docker API call cannot hold the suite."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=10))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()  # shuts the default executor down with wait=False


def leftover_processes(marker: str) -> list[int]:
    from toolzoo.sandbox.limits import find_marked

    return find_marked(marker)


def leftover_containers(run_id: str) -> list[str]:
    if DOCKER_SKIP is not None:
        return []
    from toolzoo.sandbox.docker import docker_client

    cs = docker_client().containers.list(all=True, filters={"label": [f"{LABEL_PART_OF}=toolzoo",
                                                                      f"{LABEL_RUN}={run_id}"]})
    return [c.name for c in cs]


def leftovers(sb_or_marker, run_id: str) -> dict:
    """Everything a sandbox could leave behind: processes, containers, workspace, registry."""
    from toolzoo.sandbox.reaper import entries

    from toolzoo.sandbox.limits import pids_where

    marker = getattr(sb_or_marker, "sandbox_id", None) or str(sb_or_marker)
    ws = getattr(sb_or_marker, "workspace", None)
    uid = getattr(sb_or_marker, "uid", None)
    procs = leftover_processes(marker) + (pids_where(lambda i: i["uid"] == uid) if uid is not None else [])
    return {"processes": sorted(set(procs)), "containers": leftover_containers(run_id),
            "workspace": bool(ws and os.path.exists(ws)), "registry": [e.sandbox_id for _, e in entries(run_id)]}


NOTHING = {"processes": [], "containers": [], "workspace": False, "registry": []}


def pytest_collection_modifyitems(config, items):
    # Real dockerd and bubblewrap under a loaded 2-core machine: a sandbox test that stalls
    # (seen once: a docker sandbox's stdio session never opened) fails after 180 s and is run
    # once more instead of holding the suite for the global 600 s. A known flake, noted.
    for item in items:
        if "tests/sandbox/" in str(item.fspath):
            item.add_marker(pytest.mark.timeout(180))
            item.add_marker(pytest.mark.flaky(reruns=1))
