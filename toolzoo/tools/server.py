"""Serve a domain as an MCP server (official SDK, low-level ``Server``).

State lives **per server**: a server instance owns one seeded state, and every MCP session
connected to it sees and changes that state. Per-session state is not offered because the
2026 MCP protocol (the SDK's default "modern" era) is stateless: requests carry no session
identity. So toolzoo runs one server per episode -- the inline tier builds a fresh in-memory
``DomainServer`` (cheap: the domain is compiled once and shared), the process, docker and
kubernetes tiers run one server per sandbox. Concurrent sessions and concurrent calls are
safe: each call is applied atomically (effects are synchronous and run to completion on the
event loop; simulated tools hold a server-wide lock), so calls never interleave.

Admin tools (``_toolzoo_snapshot``, ``_toolzoo_restore``, ``_toolzoo_reset``, ``_toolzoo_hash``)
and the ``toolzoo://state`` resource exist only when ``admin=True``, and even then they are
listed and served only to a caller whose request carries the server's admin secret in its
``_meta`` (key :data:`ADMIN_META_KEY`). The secret is per server: the harness makes it and
hands it over out of band (a file only the server's uid can read, or memory for the in-process
server), never on a command line or in an environment an agent's code can read. A request
without it is answered as if the tool did not exist, so code in a sandbox that reaches the
server (a loopback port, a pipe) still cannot read or rewrite the state the judge reads.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Any

from mcp import types
from mcp.server.lowlevel import Server  # what `mcp.server.Server` is; the slim entry skips `mcp.server`'s __init__

from toolzoo.core import ToolResult
from toolzoo.tools.loader import Domain
from toolzoo.tools.runtime import DomainRuntime, Simulator
from toolzoo.tools.state import State, canonical_json, seed_state

ADMIN_PREFIX = "_toolzoo_"
ADMIN_META_KEY = "dev.toolzoo/admin-secret"  # where an admin request carries the secret (``_meta``)
_ADMIN_TOOLS = [
    types.Tool(name="_toolzoo_snapshot", description="(admin) the state as JSON",
               input_schema={"type": "object", "properties": {}}),
    types.Tool(name="_toolzoo_hash", description="(admin) canonical hash of the state",
               input_schema={"type": "object", "properties": {}}),
    types.Tool(name="_toolzoo_restore", description="(admin) replace the state",
               input_schema={"type": "object", "properties": {"state": {"type": "object"}}, "required": ["state"]}),
    types.Tool(name="_toolzoo_reset", description="(admin) reseed the state",
               input_schema={"type": "object", "properties": {"seed": {"type": "integer"}}, "required": ["seed"]}),
]


class DomainServer:
    """Owns the low-level MCP ``Server`` and the runtime (state) of one domain."""

    def __init__(self, domain: Domain, seed: int = 0, *, admin: bool = False, admin_secret: str | None = None,
                 simulator: Simulator | None = None, initial: dict | None = None):
        """``admin``: offer the admin tools, to callers holding ``admin_secret`` (made here when
        not given; read it from :attr:`admin_secret`)."""
        self.domain = domain
        self.seed = seed
        self.admin = admin
        if admin_secret is not None and len(admin_secret) < 16:
            raise ValueError("admin secret must be at least 16 characters")
        self.admin_secret: str | None = (admin_secret or secrets.token_urlsafe(32)) if admin else None
        state = State(initial, {n: c.key for n, c in domain.spec.state.items()}) if initial is not None \
            else seed_state(domain.spec, seed)
        self.runtime = DomainRuntime(domain, state, simulator)
        self._lock = asyncio.Lock()
        self._tools = [
            types.Tool(name=t.name, description=t.description, input_schema=t.parameters,
                       annotations=None if t.read_only_hint is None
                       else types.ToolAnnotations(read_only_hint=t.read_only_hint))
            for t in domain.spec.tools
        ]
        self.server = Server(
            domain.name,
            version=domain.spec.version,
            description=domain.spec.description or None,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_read_resource=self._read_resource,
        )
        # An in-memory client (same process: the driver) finds the secret here; no other
        # transport can reach this attribute.
        self.server._toolzoo_admin_secret = self.admin_secret  # type: ignore[attr-defined]

    def authorized(self, params: Any) -> bool:
        """Whether a request carries this server's admin secret."""
        if self.admin_secret is None:
            return False
        meta = getattr(params, "meta", None)
        given = meta.get(ADMIN_META_KEY) if isinstance(meta, dict) else None
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.admin_secret.encode())

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self._tools + (_ADMIN_TOOLS if self.authorized(params) else []))

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name, args = params.name, params.arguments or {}
        if name.startswith(ADMIN_PREFIX):
            # Unauthorised: the same answer as for any unknown name (nothing to probe for).
            result = self._admin(name, args) if self.authorized(params) else None
            if result is None:
                return to_call_result(ToolResult(name=name, content=f"unknown tool {name!r}", is_error=True))
            return to_call_result(result)
        tool = self.domain.tools.get(name)
        async with self._lock:  # calls are atomic with respect to each other
            if tool is not None and tool.spec.simulated:
                return to_call_result(await self.runtime.call(name, args))
            if tool is not None and tool.impl is not None:
                # Code tools (run_python, ...) may take seconds: run them off the event loop.
                return to_call_result(await asyncio.to_thread(self.runtime.call_sync, name, args))
            return to_call_result(self.runtime.call_sync(name, args))

    def _admin(self, name: str, args: dict[str, Any]) -> ToolResult | None:
        state = self.runtime.state
        if name == "_toolzoo_snapshot":
            data = state.to_json()
        elif name == "_toolzoo_hash":
            data = state.hash()
        elif name == "_toolzoo_restore":
            snap = args.get("state")
            if not isinstance(snap, dict) or set(snap) != set(state.data):
                return ToolResult(name=name, content="restore: state must map every collection", is_error=True)
            state.restore(snap)
            data = state.hash()
        elif name == "_toolzoo_reset":
            seed = args.get("seed")
            if not isinstance(seed, int):
                return ToolResult(name=name, content="reset: seed must be an integer", is_error=True)
            state.restore(seed_state(self.domain.spec, seed).data)
            data = state.hash()
        else:
            return None
        return ToolResult(name=name, content=canonical_json(data), structured=data)

    async def _list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        if not self.authorized(params):  # the whole state, hidden information included
            return types.ListResourcesResult(resources=[])
        return types.ListResourcesResult(resources=[
            types.Resource(name="state", uri="toolzoo://state", mime_type="application/json",
                           description="The server's domain state (read-only)."),
        ])

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        if str(params.uri) != "toolzoo://state" or not self.authorized(params):
            raise ValueError(f"unknown resource {params.uri}")
        state = self.runtime.state
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri="toolzoo://state", mime_type="application/json",
                                       text=canonical_json(state.data)),
        ])


def to_call_result(result: ToolResult) -> types.CallToolResult:
    # structuredContent must be an object: results are wrapped as {"result": value}.
    structured = None if result.is_error else {"result": result.structured}
    return types.CallToolResult(content=[types.TextContent(type="text", text=result.content)],
                                structured_content=structured, is_error=result.is_error)


def from_call_result(name: str, result: types.CallToolResult, call_id: str = "") -> ToolResult:
    text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
    structured = result.structured_content
    if isinstance(structured, dict) and set(structured) == {"result"}:
        structured = structured["result"]
    return ToolResult(call_id=call_id, name=name, content=text, structured=structured, is_error=bool(result.is_error))


def read_secret_file(path: str) -> str:
    """The admin secret from ``path``: a file the harness made readable only by this server's
    uid (a kubernetes Secret volume, a read-only bind in the process and docker tiers)."""
    with open(path, encoding="utf-8") as f:
        secret = f.read().strip()
    if len(secret) < 16:
        raise ValueError(f"{path}: admin secret must be at least 16 characters")
    return secret


def read_secret_fd(fd: int) -> str:
    """The admin secret from an inherited file descriptor (opened by a privileged parent that
    then dropped to this server's uid: the kubernetes pod), closed after reading so nothing the
    server starts inherits it."""
    with open(fd, encoding="utf-8", closefd=True) as f:
        secret = f.read().strip()
    if len(secret) < 16:
        raise ValueError(f"fd {fd}: admin secret must be at least 16 characters")
    return secret


def run_stdio(server: DomainServer) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.server.run(read, write, server.server.create_initialization_options())

    anyio.run(main)


def run_http(server: DomainServer, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    # DNS-rebinding protection is on for loopback hosts; off when serving a pod on 0.0.0.0.
    app = server.server.streamable_http_app(host=host)
    uvicorn.run(app, host=host, port=port, log_level="warning")
