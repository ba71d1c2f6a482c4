"""``toolzoo serve-mcp`` seen by an outside MCP client (the real SDK ``Client``, over stdio and
streamable HTTP): by default exactly the domain's tools and no state resource; with ``--admin``
the admin tools exist only for a caller whose request carries the secret, and every other
caller -- no secret, a wrong one, a right one in the wrong place -- is refused and sees exactly
the domain's tools."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest
from mcp import Client, StdioServerParameters

from toolzoo.tools.server import ADMIN_META_KEY, DomainServer
from toolzoo.tools.session import MCPSession
from toolzoo.tools.zoo import get_domain

DOMAIN = "bank_accounts"
SECRET = "s3cret-" + "x" * 24
ADMIN = {"_toolzoo_snapshot", "_toolzoo_hash", "_toolzoo_restore", "_toolzoo_reset"}


def _domain_tools() -> set[str]:
    return {t.spec.name for t in get_domain(DOMAIN).tools.values()}


def _serve(*extra: str) -> list[str]:
    return [sys.executable, "-m", "toolzoo.cli", "serve-mcp", DOMAIN, "--seed", "2", *extra]


@pytest.fixture()
def secret_file(tmp_path):
    p = tmp_path / "secret"
    p.write_text(SECRET + "\n")
    p.chmod(0o400)
    return str(p)


async def _probe(client: Client, meta=None) -> dict:
    """What a client sees and can do: listed tools, resources, and each admin call's outcome."""
    listed = {t.name for t in (await client.list_tools(meta=meta, cache_mode="bypass")).tools}
    resources = [str(r.uri) for r in (await client.list_resources(meta=meta, cache_mode="bypass")).resources]
    calls = {}
    for name, args in (("_toolzoo_snapshot", {}), ("_toolzoo_reset", {"seed": 9}), ("_toolzoo_hash", {})):
        r = await client.call_tool(name, args, meta=meta)
        calls[name] = (bool(r.is_error), "".join(getattr(c, "text", "") for c in r.content))
    return {"tools": listed, "resources": resources, "calls": calls}


def _refused(seen: dict) -> None:
    assert seen["tools"] == _domain_tools(), seen["tools"] ^ _domain_tools()
    assert seen["resources"] == []
    for name, (is_error, text) in seen["calls"].items():
        assert is_error and f"unknown tool {name!r}" in text, (name, text)


def test_stdio_default_lists_exactly_the_domain_tools_and_serves_no_admin():
    async def main():
        params = StdioServerParameters(command=sys.executable, args=_serve()[1:])
        async with Client(params) as client:
            _refused(await _probe(client))
            # even a caller that presents a secret gets nothing: admin is off
            _refused(await _probe(client, {ADMIN_META_KEY: SECRET}))
    asyncio.run(main())


def test_stdio_admin_only_for_the_secret_holder(secret_file):
    async def main():
        params = StdioServerParameters(command=sys.executable, args=_serve("--admin", "--admin-secret-file",
                                                                           secret_file)[1:])
        async with Client(params) as client:
            _refused(await _probe(client))
            _refused(await _probe(client, {ADMIN_META_KEY: SECRET[:-1] + "y"}))
            _refused(await _probe(client, {"admin-secret": SECRET}))  # the right secret under another key
            holder = await _probe(client, {ADMIN_META_KEY: SECRET})
            assert holder["tools"] == _domain_tools() | ADMIN
            assert holder["resources"] == ["toolzoo://state"]
            assert all(not err for err, _ in holder["calls"].values()), holder["calls"]
    asyncio.run(main())


def test_admin_flag_without_a_secret_file_is_refused():
    proc = subprocess.run(_serve("--admin"), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--admin-secret-file" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def http_admin(secret_file):
    port = _free_port()
    proc = subprocess.Popen(_serve("--transport", "http", "--port", str(port), "--admin",
                                   "--admin-secret-file", secret_file),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def test_http_admin_only_for_the_secret_holder_and_state_untouched_by_others(http_admin):
    async def main():
        async with MCPSession(http_admin, admin_secret=SECRET) as harness:
            before = await harness.state_hash()
            async with Client(http_admin) as outsider:
                _refused(await _probe(outsider))
                _refused(await _probe(outsider, {ADMIN_META_KEY: "wrong-wrong-wrong-wrong"}))
                with pytest.raises(Exception):
                    await outsider.read_resource("toolzoo://state")
            assert await harness.state_hash() == before  # the refused reset changed nothing
            # the harness's own session never offers admin tools to the agent
            assert {t.name for t in await harness.list_tools()} == _domain_tools()
            assert (await harness.call_tool("_toolzoo_reset", {"seed": 1})).is_error
            snap = await harness.snapshot()
            assert set(snap) == set(get_domain(DOMAIN).spec.state)
    asyncio.run(main())


def test_in_memory_server_refuses_requests_without_its_secret():
    async def main():
        server = DomainServer(get_domain(DOMAIN), seed=2, admin=True)
        assert server.admin_secret and len(server.admin_secret) >= 32
        async with Client(server.server) as client:  # an in-process client not given the secret
            _refused(await _probe(client))
        async with MCPSession(server.server) as driver:  # the driver's session finds it in memory
            assert (await driver.state_hash()) == server.runtime.state.hash()
        plain = DomainServer(get_domain(DOMAIN), seed=2)
        assert plain.admin_secret is None
        async with Client(plain.server) as client:
            _refused(await _probe(client, {ADMIN_META_KEY: server.admin_secret}))
    asyncio.run(main())
