"""The process tier's tool server is the slim entry (``toolzoo/tools/serve_slim.py``) and, inside
the real jail (bubblewrap, its own uids, rlimits), it takes the slim path: the ``mcp`` and
``mcp.server`` package ``__init__``s never run, and it still lists and answers tools and serves
the admin state. ``-X importtime`` (added to the tier's own command line) shows what it imported.
"""

from __future__ import annotations

import sys

from tests.sandbox.conftest import NOTHING, leftovers, make_spec, needs_bwrap, run
from tests.tools.test_serve_slim import NEVER, imported
from toolzoo.sandbox import create_sandbox
from toolzoo.sandbox import process as process_tier
from toolzoo.tools.serve_slim import SCRIPT


@needs_bwrap
def test_process_tier_serves_through_the_slim_path(monkeypatch, run_id):
    original = process_tier.ProcessSandbox._server

    def with_importtime(self):
        argv, env = original(self)
        assert argv[0] == sys.executable and SCRIPT in argv, argv  # the tier runs the slim script
        return [argv[0], "-X", "importtime", *argv[1:]], env

    monkeypatch.setattr(process_tier.ProcessSandbox, "_server", with_importtime)

    async def go():
        sb = await create_sandbox(make_spec("process", run_id))
        try:
            tools = {t.name for t in await sb.session.list_tools()}
            ok = await sb.session.call_tool("get_order", {"order_id": "o0001"})
            bad = await sb.session.call_tool("get_order", {"order_id": 3})
            snap = await sb.snapshot()
            echo = await sb.exec("echo hi")
            return sb, tools, ok, bad, snap, echo, sb.session.server_stderr(limit=10**7)
        finally:
            await sb.close()

    sb, tools, ok, bad, snap, echo, stderr = run(go())
    assert sb.isolation.startswith("bubblewrap"), sb.isolation
    assert {"get_order", "cancel_order"} <= tools and not any(n.startswith("_toolzoo_") for n in tools)
    assert not ok.is_error and ok.structured["id"] == "o0001"
    assert bad.is_error and "order_id" in bad.content
    assert "o0001" in snap["orders"] and echo.stdout == "hi\n"
    mods = imported(stderr)
    assert {"mcp.server.lowlevel.server", "mcp_types"} <= mods, f"no importtime output: {stderr[-500:]!r}"
    leaked = sorted(m for m in mods if any(m == n or m.startswith(n + ".") for n in NEVER))
    assert not leaked, f"the jailed server imported {leaked}"
    assert leftovers(sb, run_id) == NOTHING
