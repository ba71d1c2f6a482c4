"""The inline tier: the tool server lives in this process. ``transport: direct`` calls the
runtime without JSON-RPC framing; ``transport: mcp`` goes through the SDK's in-memory MCP
transport. Both give identical results (a conformance test holds them to it). No code runs
here, so exec and files are unsupported, and a domain with ``impl:`` tools (Python functions:
``run_python``, ``run_shell``, file tools) is refused -- they would run agent code unisolated on
this host, as the driver's user -- unless ``allow_unisolated: true`` says so, and then
``isolation`` records it. ``impl:`` tools run in a worker thread either way (both sessions),
so a slow one never holds up other episodes."""

from __future__ import annotations

from typing import Any

from toolzoo.sandbox.base import ExecResult, SandboxSpec, SandboxUnsupported, deadline_for
from toolzoo.tools.server import DomainServer
from toolzoo.tools.session import DirectSession, MCPSession, ToolSession
from toolzoo.tools.zoo import get_domain


class InlineUnisolated(RuntimeError):
    """A domain whose tools run code was given to the inline tier without ``allow_unisolated``."""


UNISOLATED = "none (in-process; impl tools run unisolated on this host, allowed by config)"


def code_tools(domain) -> list[str]:
    """The domain's tools backed by Python code (``impl:``) rather than declared effects."""
    return [name for name, tool in domain.tools.items() if tool.impl is not None]


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
    domain = get_domain(spec.domain)
    code = code_tools(domain)
    if code and not spec.allow_unisolated:
        raise InlineUnisolated(
            f"domain {domain.name!r} has tools that run code ({', '.join(code)}): the inline tier would run "
            f"them unisolated in the driver, on this host. Use sandbox.backend: process (bubblewrap) or docker, "
            f"or set sandbox.allow_unisolated: true to accept that")
    server = DomainServer(domain, seed=spec.seed, admin=True, simulator=spec.options.get("simulator"))
    if spec.transport == "direct":
        session: ToolSession = DirectSession(server.runtime)
    else:
        session = MCPSession(server.server)
        await session.open()
    sandbox = InlineSandbox(spec, server, session)
    if code:
        sandbox.isolation = UNISOLATED
    return sandbox
