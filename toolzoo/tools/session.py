"""ToolSession: the one interface episodes use to reach a domain's tools.

Two implementations with identical results, errors and state (held to it by a conformance
test): :class:`DirectSession` calls the runtime in-process without JSON-RPC framing (the fast
inline path), :class:`MCPSession` is a real MCP client over any transport (in-memory, stdio,
streamable HTTP) and is what every isolation boundary uses.

Admin calls (snapshot, restore, hash, reset) carry the server's admin secret in the request's
``_meta``: an :class:`MCPSession` made with ``admin_secret`` (or over the in-memory transport
of a :class:`~toolzoo.tools.server.DomainServer`, which hands it over in memory) can make them;
agents never reach them through a session either way.

Code-running (``impl:``) tools run in a worker thread on both sessions: a 60 s ``run_python``
must not freeze the event loop every concurrent episode shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from typing import Any, Protocol, runtime_checkable

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from toolzoo.core import ToolResult, ToolSpecView
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.server import ADMIN_META_KEY, ADMIN_PREFIX, from_call_result


class SessionClosed(Exception):
    """The tool server is gone (process died, connection lost): an infra failure."""


@runtime_checkable
class ToolSession(Protocol):
    async def list_tools(self) -> list[ToolSpecView]: ...

    async def call_tool(self, name: str, args: Any, call_id: str = "") -> ToolResult: ...

    async def snapshot(self) -> dict[str, Any]: ...

    async def restore(self, state: dict[str, Any]) -> str: ...

    async def state_hash(self) -> str: ...

    async def close(self) -> None: ...


class DirectSession:
    def __init__(self, runtime: DomainRuntime):
        self.runtime = runtime

    async def list_tools(self) -> list[ToolSpecView]:
        return self.runtime.tool_views()

    async def call_tool(self, name: str, args: Any, call_id: str = "") -> ToolResult:
        tool = self.runtime.domain.tools.get(name)
        if tool is not None and tool.impl is not None and not tool.spec.simulated:
            # Off the event loop (the MCP server does the same), so other episodes keep going.
            result = await asyncio.to_thread(self.runtime.call_sync, name, args)
        else:
            result = await self.runtime.call(name, args)
        if call_id:  # the runtime builds a fresh result per call: no copy needed to set the id
            result.call_id = call_id
        return result

    async def snapshot(self) -> dict[str, Any]:
        return self.runtime.state.to_json()

    async def records(self, touched: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
        """Those records of :meth:`snapshot` alone (None: missing), without converting the rest."""
        return self.runtime.state.records_json(touched)

    async def hashed_snapshot(self) -> tuple[dict[str, Any], str]:
        """(:meth:`snapshot`, :meth:`state_hash`) from one encoding of the state: what an
        episode reads at its end."""
        return self.runtime.state.hashed_json()

    async def restore(self, state: dict[str, Any]) -> str:
        self.runtime.state.restore(state)
        return self.runtime.state.hash()

    async def state_hash(self) -> str:
        return self.runtime.state.hash()

    async def close(self) -> None:
        return None


class MCPSession:
    """An MCP client session. ``server`` is anything ``mcp.Client`` accepts: a low-level
    ``Server`` (in-memory), ``StdioServerParameters`` (stdio) or an ``http(s)://`` URL."""

    def __init__(self, server: Any, *, mode: str = "auto", admin_secret: str | None = None):
        # The in-memory transport's server object carries its secret (same process: the driver).
        self._admin_secret = admin_secret or getattr(server, "_toolzoo_admin_secret", None)
        self._stderr: Any = None
        if isinstance(server, StdioServerParameters):
            # The server's stderr goes to a private file, not the driver's: a server process
            # that outlives its driver must not hold the driver's terminal or CI's pipe, and
            # its last words are worth quoting when it dies.
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            server = stdio_client(server, errlog=self._stderr)
        self._client = Client(server, mode=mode) if mode != "auto" else Client(server)
        self._owner: asyncio.Task | None = None  # holds the connection (see ``open``)
        self._closing: asyncio.Event | None = None
        self._tools: list[ToolSpecView] | None = None

    def server_stderr(self, limit: int = 2000) -> str:
        """The last ``limit`` characters a stdio server wrote to stderr ("" for other transports)."""
        if self._stderr is None or self._stderr.closed:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._stderr.flush()
            size = self._stderr.seek(0, 2)
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read()[-limit:]
        return ""

    def _failure(self, what: str) -> SessionClosed:
        tail = self.server_stderr().strip()
        return SessionClosed(f"{what}\nserver stderr (tail):\n{tail}" if tail else what)

    async def __aenter__(self) -> MCPSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect. The SDK's client context (anyio task groups and cancel scopes) must be left
        in the task that entered it, but a pooled sandbox is opened by one episode's task and
        closed by another's (or by the pool's drain): so one owner task enters the context,
        holds it until :meth:`close`, and leaves it; calls from any task go through it."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future = loop.create_future()
        self._closing = asyncio.Event()

        async def hold() -> None:
            try:
                async with self._client:
                    ready.set_result(None)
                    await self._closing.wait()
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
                    return
                raise

        self._owner = loop.create_task(hold())
        try:
            await ready
        except asyncio.CancelledError:
            self._owner.cancel()  # the opener gave up: so does the connection
            raise
        except Exception as exc:
            raise self._failure(f"cannot connect to tool server: {type(exc).__name__}: {exc}") from exc

    async def list_tools(self) -> list[ToolSpecView]:
        if self._tools is None:
            listed = await self._guard(self._client.list_tools(meta=self._meta()))
            self._tools = [
                ToolSpecView(name=t.name, description=t.description or "", parameters=dict(t.input_schema))
                for t in listed.tools if not t.name.startswith(ADMIN_PREFIX)
            ]
        return self._tools

    async def call_tool(self, name: str, args: Any, call_id: str = "") -> ToolResult:
        if name.startswith(ADMIN_PREFIX):  # agents never reach admin tools
            return ToolResult(call_id=call_id, name=name, content=f"unknown tool {name!r}", is_error=True)
        if not isinstance(args, dict):
            return ToolResult(call_id=call_id, name=name, is_error=True,
                              content=f"{name}: arguments must be an object, got {type(args).__name__}")
        result = await self._guard(self._client.call_tool(name, args))
        return from_call_result(name, result, call_id)

    async def _admin(self, name: str, args: dict[str, Any] | None = None) -> Any:
        if self._tools is None:
            await self.list_tools()  # the SDK validates results against its (secret-holding) listing
        result = from_call_result(name, await self._guard(self._client.call_tool(name, args or {}, meta=self._meta())))
        if result.is_error:
            raise RuntimeError(f"{name} failed: {result.content}")
        return result.structured

    def _meta(self) -> dict[str, str] | None:
        return {ADMIN_META_KEY: self._admin_secret} if self._admin_secret else None

    async def snapshot(self) -> dict[str, Any]:
        return await self._admin("_toolzoo_snapshot")

    async def restore(self, state: dict[str, Any]) -> str:
        return await self._admin("_toolzoo_restore", {"state": state})

    async def state_hash(self) -> str:
        return await self._admin("_toolzoo_hash")

    async def close(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            self._closing.set()
            await asyncio.wait({owner})  # the closer's own cancellation still propagates
            if not owner.cancelled():
                owner.exception()  # retrieved: a server that died has nothing left to say
        if self._stderr is not None:
            self._stderr.close()

    async def _guard(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except SessionClosed:
            raise
        except asyncio.CancelledError as exc:
            # The SDK cancels its own scope when an HTTP server dies mid-request; only a
            # cancellation aimed at *this* task (a timeout, a shutdown) may propagate.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise self._failure(f"tool server connection lost: {exc or 'cancelled'}") from exc
        except Exception as exc:
            # Protocol-level failures (broken pipe, closed stream, HTTP errors) are infra failures.
            raise self._failure(f"tool server failed: {type(exc).__name__}: {exc}") from exc


def stdio_params(command: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=cwd)
