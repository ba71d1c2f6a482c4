"""Sandbox start-up benchmark: cold create and warm acquire (p50/p95) for the process and
docker tiers, against raw baselines measured in the same run, and N concurrent process
sandboxes with a leak check at the end.

    python bench/sandboxes.py [--n 20] [--concurrent 200] [--skip-docker]

Baselines: bare ``subprocess`` start of the same tool-server command to its first MCP
response (no jail); bare ``docker run --rm IMAGE true`` on the same image.
Goals: warm acquire p50 <= 5 ms (process), <= 20 ms (docker); zero leaks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid

from toolzoo.sandbox import SandboxLimits, SandboxSpec, create_sandbox
from toolzoo.sandbox.pool import PoolConfig, SandboxPool
from toolzoo.sandbox.reaper import entries, gc
from toolzoo.tools.session import MCPSession, stdio_params


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000


def row(name: str, xs: list[float]) -> dict:
    r = {"name": name, "n": len(xs), "p50_ms": pct(xs, 0.5), "p95_ms": pct(xs, 0.95)}
    print(f"{name:40s} n={r['n']:4d}  p50 {r['p50_ms']:9.2f} ms  p95 {r['p95_ms']:9.2f} ms", flush=True)
    return r


async def raw_subprocess(n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = MCPSession(stdio_params([sys.executable, "-m", "toolzoo.cli", "serve-mcp", "retail_orders",
                                     "--transport", "stdio"]))
        await s.open()
        await s.list_tools()
        out.append(time.perf_counter() - t0)
        await s.close()
    return out


def raw_docker(n: int, image: str) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "--network", "none", image, "true"], check=True,
                       stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


async def cold(backend: str, n: int, run_id: str) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        sb = await create_sandbox(SandboxSpec(backend=backend, domain="retail_orders", run_id=run_id,
                                              episode_id=f"cold-{i}"))
        await sb.session.list_tools()
        out.append(time.perf_counter() - t0)
        await sb.close()
    return out


async def warm(backend: str, n: int, run_id: str) -> list[float]:
    out = []
    spec = SandboxSpec(backend=backend, domain="retail_orders", run_id=run_id, episode_id="warm")
    async with SandboxPool(PoolConfig(warm=2, max_leases=4), run_id=run_id) as pool:
        await pool.prewarm(spec)
        for i in range(n):
            s = spec.model_copy(update={"seed": i % 2})  # every other lease needs a reset
            t0 = time.perf_counter()
            lease = await pool.acquire(s)
            out.append(time.perf_counter() - t0)
            await pool.release(lease)
    return out


async def concurrent(n: int, run_id: str, parallel: int) -> dict:
    sem = asyncio.Semaphore(parallel)  # creation concurrency: the box has 2 cores
    limits = SandboxLimits(memory_mb=512, wall_time_s=900)

    async def one(i: int):
        async with sem:
            sb = await create_sandbox(SandboxSpec(backend="process", domain="retail_orders", run_id=run_id,
                                                  episode_id=f"c{i}", limits=limits))
        return sb

    t0 = time.perf_counter()
    sbs = await asyncio.gather(*(one(i) for i in range(n)))
    t_up = time.perf_counter() - t0
    t1 = time.perf_counter()
    results = await asyncio.gather(*(sb.session.call_tool("get_order", {"order_id": "o0000"}) for sb in sbs))
    t_call = time.perf_counter() - t1
    ok = sum(not r.is_error for r in results)
    t2 = time.perf_counter()
    await asyncio.gather(*(sb.close() for sb in sbs))
    t_close = time.perf_counter() - t2
    from toolzoo.sandbox.limits import find_marked

    leaked = sum(bool(find_marked(sb.sandbox_id)) or os.path.exists(sb.workspace) for sb in sbs)
    leaked += len(entries(run_id))
    print(f"{n} concurrent process sandboxes: up in {t_up:.1f} s, {ok}/{n} calls ok in {t_call*1000:.0f} ms, "
          f"closed in {t_close:.1f} s, leaks {leaked}", flush=True)
    return {"n": n, "up_s": t_up, "ok": ok, "leaks": leaked}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--warm-n", type=int, default=200)
    ap.add_argument("--concurrent", type=int, default=200)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--skip-docker", action="store_true")
    args = ap.parse_args()
    run_id = f"bench-{uuid.uuid4().hex[:6]}"
    os.environ.setdefault("TOOLZOO_STATE_DIR", tempfile.mkdtemp(prefix="toolzoo-bench-state-"))

    raw_p = row("baseline: bare subprocess server", await raw_subprocess(args.n))
    cold_p = row("process: cold create", await cold("process", args.n, run_id))
    warm_p = row("process: warm acquire", await warm("process", args.warm_n, run_id))
    print(f"  ratios: cold/baseline {cold_p['p50_ms'] / raw_p['p50_ms']:.2f}x   "
          f"warm p50 {warm_p['p50_ms']:.2f} ms (goal <= 5 ms: {'met' if warm_p['p50_ms'] <= 5 else 'MISSED'})")
    if not args.skip_docker:
        from toolzoo.sandbox.docker import docker_available, ensure_image

        ok, why = docker_available()
        if ok:
            image = ensure_image()
            raw_d = row("baseline: docker run --rm IMAGE true", raw_docker(args.n, image))
            cold_d = row("docker: cold create", await cold("docker", args.n, run_id))
            warm_d = row("docker: warm acquire", await warm("docker", args.warm_n, run_id))
            print(f"  ratios: cold/baseline {cold_d['p50_ms'] / raw_d['p50_ms']:.2f}x   "
                  f"warm p50 {warm_d['p50_ms']:.2f} ms (goal <= 20 ms: {'met' if warm_d['p50_ms'] <= 20 else 'MISSED'})")
        else:
            print(f"docker skipped: {why}")
    if args.concurrent:
        await concurrent(args.concurrent, run_id, args.parallel)
    rep = gc(run_id)
    print(f"final gc: {rep.model_dump()}")
    if rep.registry_entries_removed or rep.containers_removed:
        print("LEAKS found by gc")
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
