"""Warm pools: pre-created sandboxes handed out as leases, so no sandbox starts on the hot path.

A pool is keyed by (tier, image, domain, limits). State lives per tool server, so a sandbox
coming back is reset to the next lease's seed (one ``_toolzoo_reset`` call, skipped when the
seed already matches) before reuse; a sandbox that ran code or changed files (``tainted``),
died, or is too close to its own deadline is discarded and replaced. A semaphore caps the
leases out at once; a background task keeps ``warm`` idle sandboxes per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from toolzoo.sandbox.base import Sandbox, SandboxSpec, create_sandbox


class PoolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warm: int = 4  # idle sandboxes kept ready per key
    max_leases: int = 64  # leases out at once (acquire waits beyond)
    create_concurrency: int = 4  # sandboxes being created at once by the refiller
    sandbox_ttl_s: float = 3600.0  # a pooled sandbox's own time to live
    lease_s: float | None = None  # lease length; default: the spec's wall_time_s


class Lease:
    def __init__(self, sandbox: Sandbox, key: tuple, deadline: float, seed: int):
        self.sandbox = sandbox
        self.key = key
        self.deadline = deadline
        self.seed = seed
        self.released = False

    @property
    def session(self) -> Any:
        return self.sandbox.session

    def expired(self) -> bool:
        return time.time() > self.deadline


def pool_key(spec: SandboxSpec) -> tuple:
    return (spec.backend, spec.image, spec.domain, spec.limits.model_dump_json(), spec.allow_unisolated)


class _Slot:
    def __init__(self) -> None:
        self.idle: list[tuple[Sandbox, int]] = []  # (sandbox, seed its state is at)
        self.template: SandboxSpec | None = None
        self.creating = 0


class SandboxPool:
    def __init__(self, config: PoolConfig | None = None, *, run_id: str = "pool"):
        self.config = config or PoolConfig()
        self.run_id = run_id
        self._slots: dict[tuple, _Slot] = {}
        self._leases: set[Lease] = set()
        self._sem = asyncio.Semaphore(self.config.max_leases)
        self._create_sem = asyncio.Semaphore(self.config.create_concurrency)
        self._wake = asyncio.Event()
        self._refiller: asyncio.Task | None = None
        self._closed = False
        self._counter = 0

    # -- filling ------------------------------------------------------------------------------
    def _pooled_spec(self, spec: SandboxSpec) -> SandboxSpec:
        self._counter += 1
        limits = spec.limits.model_copy(update={"wall_time_s": self.config.sandbox_ttl_s})
        return spec.model_copy(update={"limits": limits, "run_id": self.run_id,
                                       "episode_id": f"pool-{self._counter}"})

    async def _create_one(self, key: tuple, slot: _Slot) -> None:
        assert slot.template is not None
        spec = self._pooled_spec(slot.template)
        slot.creating += 1
        try:
            async with self._create_sem:
                sb = await create_sandbox(spec)
            if self._closed:
                await sb.close()
            else:
                slot.idle.append((sb, spec.seed))
        finally:
            slot.creating -= 1

    async def prewarm(self, spec: SandboxSpec, n: int | None = None) -> None:
        """Fill the pool for ``spec``'s key to ``n`` (default ``warm``) idle sandboxes now."""
        key, slot = self._slot(spec)
        need = (n if n is not None else self.config.warm) - len(slot.idle) - slot.creating
        await asyncio.gather(*(self._create_one(key, slot) for _ in range(max(0, need))))
        self._ensure_refiller()

    def _slot(self, spec: SandboxSpec) -> tuple[tuple, _Slot]:
        key = pool_key(spec)
        slot = self._slots.setdefault(key, _Slot())
        if slot.template is None:
            slot.template = spec
        return key, slot

    def _ensure_refiller(self) -> None:
        if self._refiller is None and not self._closed:
            self._refiller = asyncio.create_task(self._refill_loop())

    async def _refill_loop(self) -> None:
        while not self._closed:
            self._wake.clear()
            jobs = []
            for key, slot in self._slots.items():
                need = self.config.warm - len(slot.idle) - slot.creating
                jobs += [self._create_one(key, slot) for _ in range(max(0, need))]
            if jobs:
                await asyncio.gather(*jobs, return_exceptions=True)
            await self._expire_leases()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def _expire_leases(self) -> None:
        # A lease past its deadline loses its sandbox (the holder's next call fails as infra).
        for lease in [l for l in self._leases if l.expired()]:
            await self.release(lease, discard=True)

    # -- leases -------------------------------------------------------------------------------
    async def acquire(self, spec: SandboxSpec) -> Lease:
        if self._closed:
            raise RuntimeError("pool is closed")
        await self._sem.acquire()
        try:
            key, slot = self._slot(spec)
            lease_s = self.config.lease_s or spec.limits.wall_time_s
            while True:
                if not slot.idle:
                    self._ensure_refiller()
                    self._wake.set()
                    await self._create_one(key, slot)  # cold path: nothing warm
                    continue
                sb, seed = slot.idle.pop()
                if sb.deadline < time.time() + lease_s:
                    await sb.close()  # would die mid-lease
                    continue
                if seed != spec.seed:
                    try:
                        await sb.reset(spec.seed)
                    except Exception:
                        await sb.close()
                        continue
                self._wake.set()
                lease = Lease(sb, key, min(sb.deadline, time.time() + lease_s), spec.seed)
                self._leases.add(lease)
                return lease
        except BaseException:
            self._sem.release()
            raise

    async def release(self, lease: Lease, *, discard: bool = False) -> None:
        if lease.released:
            return
        lease.released = True
        self._leases.discard(lease)
        self._sem.release()
        sb = lease.sandbox
        slot = self._slots.get(lease.key)
        reusable = (not discard and not self._closed and slot is not None and not getattr(sb, "tainted", False)
                    and len(slot.idle) < self.config.warm * 2)
        if reusable:
            try:
                # Put the state back to the lease's seed now, off the next acquire's hot path.
                await sb.reset(lease.seed)
                slot.idle.append((sb, lease.seed))
                return
            except Exception:
                pass
        await sb.close()
        self._wake.set()

    def stats(self) -> dict[str, int]:
        return {"idle": sum(len(s.idle) for s in self._slots.values()), "leased": len(self._leases),
                "creating": sum(s.creating for s in self._slots.values())}

    async def close(self) -> None:
        """Drain everything: stop refilling, close idle and leased sandboxes."""
        self._closed = True
        if self._refiller is not None:
            self._refiller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refiller
        while any(s.creating for s in self._slots.values()):
            await asyncio.sleep(0.05)
        closing = [sb for s in self._slots.values() for sb, _ in s.idle] + [l.sandbox for l in self._leases]
        for s in self._slots.values():
            s.idle.clear()
        self._leases.clear()
        await asyncio.gather(*(sb.close() for sb in closing), return_exceptions=True)

    async def __aenter__(self) -> SandboxPool:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
