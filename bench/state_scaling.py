"""Per-call cost against state size: writes and reads on a collection of 100 ... 100,000
records (and a write to a 1-record collection while another holds them), through the domain
runtime (schema validation + CEL effects) and through the MCP SDK's in-memory transport.
Sizes run interleaved in one process; each row's ratio is against the 100-record state.

    python bench/state_scaling.py [--sizes 100,1000,10000,100000] [--calls 2000] [--rounds 3]

Goal (issue 17): every ratio within 2x. Listings (``state.c.filter(...)``) are O(collection)
by nature and are not in the table. The last row is not a call: a snapshot, one write and a
restore of that snapshot (what a failed ``impl`` tool costs the runtime) on a state of each size
holding 10 earlier changes; snapshots copy only the changes since the collection's base (see
toolzoo/tools/state.py), so it too should cost the same at every size.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from toolzoo.tools.loader import load_domain_text
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.state import State, seed_state

DOMAIN = """
domain: scaling_{n}
state:
  flags:
    key: id
    schema: {{type: object, required: [id, lit], properties: {{id: {{type: string}}, lit: {{type: boolean}}}}}}
  orders:
    key: id
    schema:
      type: object
      required: [id, status, total]
      properties:
        id: {{type: string}}
        status: {{enum: [placed, shipped]}}
        total: {{type: integer, minimum: 0}}
seed:
  flags: {{count: 1, fields: {{id: {{pattern: "f{{i}}"}}, lit: {{value: false}}}}}}
  orders: {{count: {n}, fields: {{id: {{pattern: "o{{i}}"}}, status: {{value: placed}}, total: {{int: [1, 500]}}}}}}
tools:
  - name: get_order
    description: Read one order.
    parameters: {{type: object, properties: {{order_id: {{type: string}}}}, required: [order_id], additionalProperties: false}}
    effects:
      - require: "args.order_id in state.orders"
        error: "no order {{args.order_id}}"
      - return: "state.orders[args.order_id]"
  - name: set_status
    description: Write one order's status.
    parameters:
      type: object
      properties: {{order_id: {{type: string}}, status: {{enum: [placed, shipped]}}}}
      required: [order_id, status]
      additionalProperties: false
    effects:
      - require: "args.order_id in state.orders"
        error: "no order {{args.order_id}}"
      - require: "state.orders[args.order_id].total >= 0"
      - set: {{collection: orders, key: "args.order_id", field: status, value: "args.status"}}
      - return: "{{'order_id': args.order_id, 'status': args.status}}"
  - name: toggle_flag
    description: Write the one-record collection.
    parameters: {{type: object, properties: {{lit: {{type: boolean}}}}, required: [lit], additionalProperties: false}}
    effects:
      - require: "'f0' in state.flags"
      - set: {{collection: flags, key: "'f0'", field: lit, value: "args.lit"}}
      - return: "args.lit"
"""


def runtime(n: int) -> DomainRuntime:
    domain = load_domain_text(DOMAIN.format(n=n), f"<scaling {n}>")
    return DomainRuntime(domain, seed_state(domain.spec, 0))


def workloads(n: int, calls: int) -> dict[str, list[tuple[str, dict]]]:
    keys = [f"o{(i * 7919) % n}" for i in range(calls)]
    return {
        "read (get_order)": [("get_order", {"order_id": k}) for k in keys],
        "write (set_status)": [("set_status", {"order_id": k, "status": ("shipped", "placed")[i % 2]})
                               for i, k in enumerate(keys)],
        "write 1-record coll.": [("toggle_flag", {"lit": i % 2 == 0}) for i in range(calls)],
    }


def per_call_us(rt: DomainRuntime, calls: list[tuple[str, dict]]) -> float:
    for name, args in calls[:20]:  # warm caches
        rt.call_sync(name, args)
    t0 = time.perf_counter()
    for name, args in calls:
        result = rt.call_sync(name, args)
        if result.is_error:
            raise RuntimeError(result.content)
    return (time.perf_counter() - t0) / len(calls) * 1e6


async def mcp_per_call_us(rt: DomainRuntime, calls: list[tuple[str, dict]]) -> float:
    from mcp import Client

    from toolzoo.tools.server import DomainServer

    server = DomainServer(rt.domain, seed=0)  # its own seeded state of the same size
    async with Client(server.server) as client:
        for name, args in calls[:20]:
            await client.call_tool(name, args)
        t0 = time.perf_counter()
        for name, args in calls:
            await client.call_tool(name, args)
        return (time.perf_counter() - t0) / len(calls) * 1e6


def snapshot_state(rt: DomainRuntime) -> State:
    """A state of the runtime's seeded records (its own copy) with 10 changes since."""
    state = State({name: dict(recs) for name, recs in rt.state.data.items()}, rt.state.keys)
    n = len(state.data["orders"])
    for i in range(10):
        state.set_field("orders", f"o{(i * 7919) % n}", "status", "shipped")
    return state


def snapshot_restore_us(state: State, reps: int = 300) -> float:
    """snapshot + one write + restore, per cycle."""
    n = len(state.data["orders"])
    keys = [f"o{(i * 104729) % n}" for i in range(reps)]
    t0 = time.perf_counter()
    for key in keys:
        snap = state.snapshot()
        state.set_field("orders", key, "total", 1)
        state.restore(snap)
    return (time.perf_counter() - t0) / reps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--mcp-calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rts = {n: runtime(n) for n in sizes}
    snap_states = {n: snapshot_state(rts[n]) for n in sizes}
    rows: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):  # sizes interleaved so machine noise hits all alike
        for n in sizes:
            for label, calls in workloads(n, args.calls).items():
                rows.setdefault((label, n), []).append(per_call_us(rts[n], calls))
            mcp_calls = workloads(n, args.mcp_calls)
            for label in ("read (get_order)", "write (set_status)"):
                us = asyncio.run(mcp_per_call_us(rts[n], mcp_calls[label]))
                rows.setdefault((f"MCP {label}", n), []).append(us)
            rows.setdefault(("snapshot+restore", n), []).append(snapshot_restore_us(snap_states[n]))
    labels = list(dict.fromkeys(label for label, _ in rows))
    print(f"{'us per call':26s}" + "".join(f"{n:>10,}" for n in sizes) + "   ratio largest/smallest")
    worst = snap_ratio = 0.0
    for label in labels:
        med = [statistics.median(rows[(label, n)]) for n in sizes]
        ratio = med[-1] / med[0]
        if label.startswith("snapshot"):
            snap_ratio = ratio
        else:
            worst = max(worst, ratio)
        print(f"{label:26s}" + "".join(f"{m:10.1f}" for m in med) + f"   {ratio:.2f}x")
    print(f"worst call ratio {sizes[-1]:,} vs {sizes[0]:,} records: {worst:.2f}x (goal: <= 2x)")
    print(f"snapshot+restore ratio {sizes[-1]:,} vs {sizes[0]:,} records: {snap_ratio:.2f}x (goal: <= 2x)")


if __name__ == "__main__":
    main()
