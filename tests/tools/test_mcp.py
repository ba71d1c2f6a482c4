"""Every domain over MCP with the SDK's real client: in-memory, stdio and streamable HTTP; and
the direct in-process path held to identical results, errors and state."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import time

import pytest

from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.server import DomainServer
from toolzoo.tools.session import DirectSession, MCPSession, SessionClosed, stdio_params
from toolzoo.tools.state import seed_state
from toolzoo.tools.zoo import get_domain


async def _exercise(session) -> None:
    tools = {t.name: t for t in await session.list_tools()}
    assert "get_order" in tools and tools["get_order"].parameters["required"] == ["order_id"]
    assert not any(n.startswith("_toolzoo_") for n in tools), "admin tools must be hidden from agents"
    ok = await session.call_tool("get_order", {"order_id": "o0001"})
    assert not ok.is_error and ok.structured["id"] == "o0001"
    err = await session.call_tool("get_order", {"order_id": 3})
    assert err.is_error and "order_id" in err.content
    before = await session.state_hash()
    placed = next(k for k, v in (await session.snapshot())["orders"].items() if v["status"] == "placed")
    assert not (await session.call_tool("cancel_order", {"order_id": placed})).is_error
    assert await session.state_hash() != before
    assert (await session.call_tool("cancel_order", {"order_id": placed})).is_error  # already cancelled


def test_in_memory_transport():
    async def main():
        server = DomainServer(get_domain("retail_orders"), seed=0, admin=True)
        async with MCPSession(server.server) as session:
            await _exercise(session)
    asyncio.run(main())


def test_listing_announces_read_only_hints():
    from mcp import Client

    async def main():
        server = DomainServer(get_domain("retail_orders"), seed=0)
        async with Client(server.server) as client:
            return {t.name: t.annotations for t in (await client.list_tools()).tools}

    hints = asyncio.run(main())
    assert hints["get_order"].read_only_hint is True  # effects without writes
    assert hints["cancel_order"].read_only_hint is False  # a `set` effect


SECRET = "test-admin-secret-0123456789"  # serve-mcp offers admin tools only with --admin and to its holder


@pytest.fixture()
def secret_file(tmp_path):
    path = tmp_path / "admin-secret"
    path.write_text(SECRET)
    path.chmod(0o400)
    return str(path)


def test_stdio_transport(secret_file):
    async def main():
        params = stdio_params([sys.executable, "-m", "toolzoo.cli", "serve-mcp", "retail_orders", "--seed", "0",
                               "--admin", "--admin-secret-file", secret_file])
        async with MCPSession(params, admin_secret=SECRET) as session:
            await _exercise(session)
    asyncio.run(main())


def test_stdio_server_stderr_is_kept_off_the_driver_and_quoted_when_it_dies(capfd):
    """A stdio server's stderr goes to the session's own log, not the driver's stderr (a
    server that outlives its driver must not hold the driver's pipe), and its last words
    are quoted in the infra error when it dies."""
    crash = "import sys; sys.stderr.write('stderr-marker-7 boot failed\\n'); sys.exit(3)"

    async def main():
        session = MCPSession(stdio_params([sys.executable, "-c", crash]))
        with pytest.raises(SessionClosed) as err:
            await session.open()
        await session.close()
        return str(err.value)

    message = asyncio.run(main())
    assert "stderr-marker-7 boot failed" in message
    assert "stderr-marker-7" not in capfd.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def http_server(secret_file):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "toolzoo.cli", "serve-mcp", "retail_orders", "--transport", "http",
                             "--port", str(port), "--seed", "0", "--admin", "--admin-secret-file", secret_file])
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streamable_http_transport_and_concurrent_sessions(http_server):
    async def main():
        async with MCPSession(http_server, admin_secret=SECRET) as session:
            await _exercise(session)
        # Concurrent sessions share the server's state (documented: state lives per server);
        # concurrent deposits-like writes must all apply exactly once.
        sessions = [MCPSession(http_server, admin_secret=SECRET) for _ in range(4)]
        for s in sessions:
            await s.open()
        try:
            snap = await sessions[0].snapshot()
            placed = sorted(k for k, v in snap["orders"].items() if v["status"] == "placed")
            results = await asyncio.gather(*(sessions[i % 4].call_tool("ship_order", {"order_id": o})
                                             for i, o in enumerate(placed)))
            assert all(not r.is_error for r in results)
            after = await sessions[1].snapshot()
            assert all(after["orders"][o]["status"] == "shipped" for o in placed)
            again = await asyncio.gather(*(s.call_tool("ship_order", {"order_id": placed[0]}) for s in sessions))
            assert all(r.is_error for r in again)
        finally:
            for s in sessions:
                await s.close()
    asyncio.run(main())


@pytest.mark.parametrize("name", ["retail_orders", "bank_accounts", "helpdesk_tickets", "factworld"])
def test_direct_and_mcp_paths_are_identical(name):
    """Conformance: the same random call sequence gives the same results, errors and state."""
    async def main():
        d = get_domain(name)
        direct = DirectSession(DomainRuntime(d, seed_state(d.spec, 3)))
        server = DomainServer(d, seed=3, admin=True)
        rng = random.Random(name)
        keys = [k for recs in seed_state(d.spec, 3).data.values() for k in recs]
        async with MCPSession(server.server) as mcp:
            assert [t.model_dump() for t in await direct.list_tools()] == [t.model_dump() for t in await mcp.list_tools()]
            for _ in range(60):
                tool = rng.choice(sorted(d.tools))
                props = d.tools[tool].spec.parameters.get("properties", {})
                args = {p: (rng.choice(keys) if s.get("type") == "string" else rng.randint(0, 50))
                        for p, s in props.items() if rng.random() < 0.9}
                a, b = await direct.call_tool(tool, args), await mcp.call_tool(tool, args)
                assert (a.is_error, a.content, a.structured) == (b.is_error, b.content, b.structured)
                assert await direct.state_hash() == await mcp.state_hash()
    asyncio.run(main())
