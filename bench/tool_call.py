"""Tool calls per second through a toolzoo domain (schema validation + CEL effects + state)
against a raw MCP SDK server with a trivial Python tool, same transport, same process, side
by side (alternating rounds), for in-memory and stdio. Prints the ratio toolzoo / raw.

A third row compares read calls on the tau2-bench retail port (``tau2_retail``: nested records
loaded from fixtures) with ``retail_orders``, executed directly (no transport), side by side.

    python bench/tool_call.py [--calls 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from mcp import Client, StdioServerParameters

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from toolzoo.tools.server import DomainServer  # noqa: E402
from toolzoo.tools.state import seed_state  # noqa: E402
from toolzoo.tools.zoo import get_domain  # noqa: E402


def toolzoo_calls(n: int) -> list[tuple[str, dict]]:
    """A realistic mix: lookups, a listing, and mutations (half of which fail a require)."""
    d = get_domain("retail_orders")
    orders = sorted(seed_state(d.spec, 0).data["orders"])
    mix = []
    for i in range(n):
        o = orders[i % len(orders)]
        kind = i % 4
        mix.append(("get_order", {"order_id": o}) if kind in (0, 1) else
                   ("list_orders", {"customer_id": f"c{i % 12:03d}"}) if kind == 2 else
                   ("ship_order", {"order_id": o}))
    return mix


def tau2_reads(n: int) -> list[tuple[str, dict]]:
    """Reads by key on tau2_retail (an order, its user, a product), as retail_orders' reads below."""
    data = seed_state(get_domain("tau2_retail").spec, 0).data
    orders, users, products = sorted(data["orders"]), sorted(data["users"]), sorted(data["products"])
    return [("get_order_details", {"order_id": orders[i % len(orders)]}) if i % 3 == 0 else
            ("get_user_details", {"user_id": users[i % len(users)]}) if i % 3 == 1 else
            ("get_product_details", {"product_id": products[i % len(products)]}) for i in range(n)]


def retail_reads(n: int) -> list[tuple[str, dict]]:
    data = seed_state(get_domain("retail_orders").spec, 0).data
    orders, customers = sorted(data["orders"]), sorted(data["customers"])
    return [("get_order", {"order_id": orders[i % len(orders)]}) if i % 3 != 1 else
            ("get_customer", {"customer_id": customers[i % len(customers)]}) for i in range(n)]


def direct_ms_per_call(domain: str, calls: list[tuple[str, dict]]) -> float:
    from toolzoo.tools.runtime import DomainRuntime

    d = get_domain(domain)
    rt = DomainRuntime(d, seed_state(d.spec, 0))
    rt.call_sync(*calls[0])
    t0 = time.perf_counter()
    for name, args in calls:
        assert not rt.call_sync(name, args).is_error
    return (time.perf_counter() - t0) * 1000 / len(calls)


def reads_row(n: int, rounds: int) -> None:
    ratios, tau2, base = [], [], []
    for _ in range(rounds):
        b = direct_ms_per_call("retail_orders", retail_reads(n))
        t = direct_ms_per_call("tau2_retail", tau2_reads(n))
        base.append(b), tau2.append(t), ratios.append(t / b)
    print(f"[reads, direct] retail_orders {statistics.median(base):.3f} ms/call; tau2_retail "
          f"{statistics.median(tau2):.3f} ms/call; ratio tau2_retail/retail_orders = {statistics.median(ratios):.2f} "
          f"(goal <= 2; rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


async def timed(client: Client, calls: list[tuple[str, dict]]) -> float:
    await client.call_tool(*calls[0])
    t0 = time.perf_counter()
    for name, args in calls:
        await client.call_tool(name, args)
    return len(calls) / (time.perf_counter() - t0)


async def in_memory(n: int) -> tuple[float, float]:
    from raw_mcp_server import mcp as raw

    raw_calls = [("add", {"a": i, "b": 1}) for i in range(n)]
    async with Client(raw) as c:
        raw_rate = await timed(c, raw_calls)
    server = DomainServer(get_domain("retail_orders"), seed=0)
    async with Client(server.server) as c:
        tz_rate = await timed(c, toolzoo_calls(n))
    return raw_rate, tz_rate


async def stdio(n: int) -> tuple[float, float]:
    raw = StdioServerParameters(command=sys.executable, args=[os.path.join(HERE, "raw_mcp_server.py")])
    async with Client(raw) as c:
        raw_rate = await timed(c, [("add", {"a": i, "b": 1}) for i in range(n)])
    tz = StdioServerParameters(command=sys.executable, args=["-m", "toolzoo.cli", "serve-mcp", "retail_orders"])
    async with Client(tz) as c:
        tz_rate = await timed(c, toolzoo_calls(n))
    return raw_rate, tz_rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reads_row(args.calls, args.rounds)
    for label, fn in (("in-memory", in_memory), ("stdio", stdio)):
        ratios, raws, tzs = [], [], []
        for _ in range(args.rounds):
            raw_rate, tz_rate = asyncio.run(fn(args.calls))
            raws.append(raw_rate), tzs.append(tz_rate), ratios.append(tz_rate / raw_rate)
        print(f"[{label}] raw SDK {statistics.median(raws):.0f} calls/s; toolzoo {statistics.median(tzs):.0f} calls/s; "
              f"ratio toolzoo/raw = {statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
