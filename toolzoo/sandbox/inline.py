"""The inline tier: the tool server lives in this process. ``transport: direct`` calls the
runtime without JSON-RPC framing; ``transport: mcp`` goes through the SDK's in-memory MCP
transport. Both give identical results (a conformance test holds them to it). No code runs
here, so exec and files are unsupported."""

from __future__ import annotations

from typing import Any

from toolzoo.sandbox.base import ExecResult, SandboxSpec, SandboxUnsupported, deadline_for
from toolzoo.tools.server import DomainServer
from toolzoo.tools.session import DirectSession, MCPSession, ToolSession
from toolzoo.tools.zoo import get_domain


class InlineSandbox:
    isolation = "none (in-process)"

    def __init__(self, spec: SandboxSpec, server: DomainServer, session: ToolSession):
        self.spec = spec
        self.deadline = deadline_for(spec)
        self.server = server
        self._session = session

    @property
    def session(self) -> ToolSession:
        return self._session

    async def exec(self, command: list[str] | str, stdin: str | None = None, timeout: float | None = None) -> ExecResult:
        raise SandboxUnsupported("the inline tier runs no code; use backend process or docker")

    async def read_file(self, path: str) -> bytes:
        raise SandboxUnsupported("the inline tier has no workspace")

    async def write_file(self, path: str, data: bytes) -> None:
        raise SandboxUnsupported("the inline tier has no workspace")

    async def snapshot(self) -> dict[str, Any]:
        return await self._session.snapshot()

    async def restore(self, state: dict[str, Any]) -> str:
        return await self._session.restore(state)

    async def close(self) -> None:
        await self._session.close()


async def create_inline(spec: SandboxSpec) -> InlineSandbox:
    server = DomainServer(get_domain(spec.domain), seed=spec.seed, admin=True,
                          simulator=spec.options.get("simulator"))
    if spec.transport == "direct":
        session: ToolSession = DirectSession(server.runtime)
    else:
        session = MCPSession(server.server)
        await session.open()
    return InlineSandbox(spec, server, session)
