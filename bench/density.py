"""How many process-tier sandboxes one box holds: N jailed tool servers open at once, each
answering a tool call; unique memory (USS) per sandbox, the peak of their summed RSS, and
leaks after closing (processes, workspaces, registry entries).

First a side-by-side of the two server entry points on a few sandboxes (``toolzoo serve-mcp``
through the CLI, as before, against ``toolzoo/tools/serve_slim.py``, what the tier runs now),
then the density run with the slim one. The run stops adding sandboxes when the box's
available memory would drop under ``--reserve-gib`` or past ``--time-limit`` seconds, and
reports the number it reached.

``--escape``: with all N still open, the escape suite (``tests/sandbox/test_escape.py``) and
the slim-path check (``tests/sandbox/test_slim_server.py``) run on the process tier in a
subprocess, their sandboxes with exactly this run's limits (``TOOLZOO_TEST_SANDBOX_LIMITS``;
a test's own tighter limit, the fork bomb's ``pids=32`` say, on top) and the same entry point
and jail; the result is reported and decides the exit status.

    python bench/density.py [--n 500] [--compare 6] [--start-concurrency 6] [--time-limit 480] [--escape]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from pathlib import Path

import psutil

from toolzoo.sandbox import SandboxLimits, SandboxSpec, create_sandbox
from toolzoo.sandbox import process as process_tier
from toolzoo.sandbox.reaper import entries as registry_entries
from toolzoo.tools.serve_slim import SCRIPT as SLIM

DOMAIN = "retail_orders"
LIMITS = SandboxLimits()  # the tier's defaults; --escape hands these to the escape suite
REPO = Path(__file__).resolve().parents[1]
ESCAPE_TESTS = ["tests/sandbox/test_escape.py", "tests/sandbox/test_slim_server.py"]


def tree_memory(pid: int) -> tuple[int, int]:
    """(USS, RSS) summed over a sandbox's process tree (bubblewrap and the server)."""
    uss = rss = 0
    try:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                mi = p.memory_full_info()
                uss, rss = uss + mi.uss, rss + mi.rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return uss, rss


def use_cli_entry() -> None:
    """The tier's command with the old entry point (the CLI's serve-mcp) for the comparison."""
    original = process_tier.ProcessSandbox._server

    def cli_server(self):
        argv, env = original(self)
        if SLIM in argv:
            i = argv.index(SLIM)
            argv = argv[:i] + ["-m", "toolzoo.cli", "serve-mcp", argv[i + 1], "--transport", "stdio"] + argv[i + 2:]
        return argv, env

    process_tier.ProcessSandbox._server = cli_server
    use_cli_entry.restore = lambda: setattr(process_tier.ProcessSandbox, "_server", original)


async def open_one(i: int) -> tuple[object, float]:
    t0 = time.perf_counter()
    sb = await create_sandbox(SandboxSpec(backend="process", domain=DOMAIN, seed=i % 50, run_id=RUN_ID,
                                          episode_id=f"d{i}", limits=LIMITS))
    result = await sb.session.call_tool("get_order", {"order_id": "o0001"})
    if result.is_error:
        raise RuntimeError(f"sandbox {i}: {result.content}")
    return sb, time.perf_counter() - t0


async def open_many(n: int, concurrency: int, reserve: int, deadline: float) -> tuple[list, list[float], str]:
    sem = asyncio.Semaphore(concurrency)
    boxes, starts, stop = [], [], ""

    async def guarded(i: int):
        nonlocal stop
        async with sem:
            if stop:
                return
            if psutil.virtual_memory().available < reserve:
                stop = f"available memory under the reserve at {len(boxes)} sandboxes"
                return
            if time.monotonic() > deadline:
                stop = f"time limit at {len(boxes)} sandboxes"
                return
            sb, s = await open_one(i)
            boxes.append(sb)
            starts.append(s)

    results = await asyncio.gather(*(guarded(i) for i in range(n)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        stop = stop or f"{len(errors)} failed to start, first: {errors[0]!r}"
    return boxes, starts, stop


def measure(boxes: list) -> tuple[list[int], int]:
    per = [tree_memory(b.pid) for b in boxes if b.pid is not None]
    return [u for u, _ in per], sum(r for _, r in per)


RUN_ID = f"density-{os.getpid()}"


def leftovers(boxes: list) -> dict[str, int]:
    """What is left of these sandboxes: live processes of their trees, workspaces, entries."""
    alive = sum(1 for b in boxes if b.pid is not None and psutil.pid_exists(b.pid)
                and psutil.Process(b.pid).status() != psutil.STATUS_ZOMBIE)
    workspaces = sum(1 for b in boxes if Path(b.workspace).exists())
    stray = 0
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except psutil.Error:
            continue
        stray += any(b.workspace in cmd for b in boxes)
    return {"server processes": alive, "stray processes": stray, "workspaces": workspaces,
            "registry entries": len(registry_entries(RUN_ID))}


async def compare(k: int) -> dict[str, float]:
    out = {}
    for label in ("cli serve-mcp", "slim"):
        if label.startswith("cli"):
            use_cli_entry()
        try:
            boxes, _, _ = await open_many(k, 3, 0, time.monotonic() + 300)
            await asyncio.sleep(0.5)
            uss, _ = measure(boxes)
            out[label] = statistics.median(uss)
            await asyncio.gather(*(b.close() for b in boxes))
        finally:
            if label.startswith("cli"):
                use_cli_entry.restore()
    return out


async def escape_suite(timeout: float) -> tuple[bool, str]:
    """The escape suite and the slim-path check on the process tier, now, in a subprocess."""
    env = os.environ | {"TOOLZOO_TEST_SANDBOX_LIMITS": LIMITS.model_dump_json()}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "process", *ESCAPE_TESTS,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return False, f"did not finish in {timeout:.0f} s"
    text = out.decode(errors="replace")
    summary = next((ln.strip("= ") for ln in reversed(text.splitlines())
                    if re.search(r"\d+ (passed|failed|error)", ln)), text[-500:])
    if proc.returncode != 0:
        summary += "\n" + "\n".join(ln for ln in text.splitlines() if ln.startswith(("FAILED", "ERROR")))
    return proc.returncode == 0, summary


async def main_async(args) -> int:
    if args.compare:
        cmp = await compare(args.compare)
        print(f"unique memory per sandbox (median of {args.compare}): cli serve-mcp {cmp['cli serve-mcp'] / 2**20:.1f} MiB"
              f" -> slim {cmp['slim'] / 2**20:.1f} MiB ({(1 - cmp['slim'] / cmp['cli serve-mcp']) * 100:.0f}% less)")
    t0 = time.perf_counter()
    boxes, starts, stop = await open_many(args.n, args.start_concurrency, int(args.reserve_gib * 2**30),
                                          time.monotonic() + args.time_limit)
    opened = time.perf_counter() - t0
    # Every open sandbox answers again while all are open (they are all alive at once).
    answers = await asyncio.gather(*(b.session.call_tool("get_order", {"order_id": "o0002"}) for b in boxes),
                                   return_exceptions=True)
    ok = sum(1 for a in answers if not isinstance(a, BaseException) and not a.is_error)
    uss, rss_sum = measure(boxes)
    box = psutil.virtual_memory()
    driver_rss = psutil.Process().memory_info().rss
    print(f"concurrent process sandboxes: {len(boxes)} opened in {opened:.0f} s (start median "
          f"{statistics.median(starts) if starts else 0:.2f} s), {ok} answered a tool call with all open"
          + (f"; stopped: {stop}" if stop else ""))
    if uss:
        print(f"unique memory per sandbox: median {statistics.median(uss) / 2**20:.1f} MiB; "
              f"summed RSS at peak {rss_sum / 2**30:.2f} GiB, summed unique {sum(uss) / 2**30:.2f} GiB")
        avail = psutil.virtual_memory().total
        print(f"at that unique memory, {avail / statistics.median(uss):.0f} would fill this box's "
              f"{avail / 2**30:.1f} GiB; at the peak the box had {box.available / 2**30:.2f} GiB available, "
              f"the driver {driver_rss / 2**20:.0f} MiB RSS")
    escaped_ok = True
    if args.escape:
        t1 = time.perf_counter()
        escaped_ok, summary = await escape_suite(args.escape_timeout)
        alive = sum(1 for b in boxes if b.alive())
        print(f"escape suite on the process tier with {len(boxes)} sandboxes open ({alive} still alive "
              f"after it), limits {LIMITS.model_dump()}: {'GREEN' if escaped_ok else 'FAILED'} in "
              f"{time.perf_counter() - t1:.0f} s: {summary}")
    await asyncio.gather(*(b.close() for b in boxes), return_exceptions=True)
    await asyncio.sleep(1.0)
    leaks = leftovers(boxes)
    print(f"leaks after close: {leaks} ({'0 leaks' if not any(leaks.values()) else 'LEAKS'})")
    return 0 if escaped_ok and not any(leaks.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--compare", type=int, default=6)
    parser.add_argument("--start-concurrency", type=int, default=6)
    parser.add_argument("--reserve-gib", type=float, default=3.0)
    parser.add_argument("--time-limit", type=float, default=480)
    parser.add_argument("--escape", action="store_true", help="run the escape suite while all N are open")
    parser.add_argument("--escape-timeout", type=float, default=1200)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
