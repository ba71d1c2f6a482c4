"""Third-party MCP servers as tool sources (a domain with ``source: {command | url}``).

The server is not toolzoo's: toolzoo only connects an :class:`MCPSession` to it and offers its
tools to agents. ``source.command`` runs the server as a subprocess speaking stdio. With
``backend: process`` it runs inside the process tier's bubblewrap jail (no network, its own
uid, read-only system, a private workspace, rlimits, a time to live, registry and reaper;
``options.ro_binds`` shows host paths read-only inside). A plain, unjailed subprocess is used
only for ``backend: inline`` or when the process tier has no jail here and
``allow_unisolated`` is set -- and ``isolation`` always says which. ``source.url`` connects
over streamable HTTP to a server someone else runs (isolation is theirs: reported as
``remote``).

Such servers keep their own state in their own way, so snapshot/restore/state hashes are
unsupported (:class:`SandboxUnsupported`); so are exec and files, except in the process tier's
jail, whose workspace they share.
"""

from __future__ import annotations

from typing import Any

from toolzoo.sandbox.base import ExecResult, SandboxSpec, SandboxUnsupported, deadline_for
from toolzoo.tools.session import MCPSession, ToolSession, stdio_params
from toolzoo.tools.spec import SourceSpec

_NO_STATE = "a third-party MCP server keeps its own state: toolzoo cannot snapshot or restore it"


class SourceSession(MCPSession):
    """An MCP session to a third-party server: no toolzoo admin tools behind it."""

    async def snapshot(self) -> dict[str, Any]:
        raise SandboxUnsupported(_NO_STATE)

    async def restore(self, state: dict[str, Any]) -> str:
        raise SandboxUnsupported(_NO_STATE)

    async def state_hash(self) -> str:
        raise SandboxUnsupported(_NO_STATE)


class SourceSandbox:
    def __init__(self, spec: SandboxSpec, source: SourceSpec, session: SourceSession, isolation: str):
        self.spec = spec
        self.source = source
        self.deadline = deadline_for(spec)
        self.isolation = isolation
        self._session = session

    @property
    def session(self) -> ToolSession:
        return self._session

    async def exec(self, command: list[str] | str, stdin: str | None = None, timeout: float | None = None) -> ExecResult:
        raise SandboxUnsupported("a third-party MCP source offers only its tools (no exec)")

    async def read_file(self, path: str) -> bytes:
        raise SandboxUnsupported("a third-party MCP source has no toolzoo workspace")

    async def write_file(self, path: str, data: bytes) -> None:
        raise SandboxUnsupported("a third-party MCP source has no toolzoo workspace")

    async def snapshot(self) -> dict[str, Any]:
        raise SandboxUnsupported(_NO_STATE)

    async def restore(self, state: dict[str, Any]) -> str:
        raise SandboxUnsupported(_NO_STATE)

    async def close(self) -> None:
        await self._session.close()


def plan_command(spec: SandboxSpec, source: SourceSpec) -> tuple[list[str], dict[str, str], str]:
    """(argv, env, isolation) for a ``source.command`` server under ``spec``'s backend."""
    assert source.command is not None
    command, env = list(source.command), dict(source.env)
    if spec.backend == "process":
        # Only reached when the tier has no jail here (see create_source).
        if not spec.allow_unisolated:
            raise SandboxUnsupported(
                "backend process: no jail for third-party servers here (bubblewrap missing); "
                "set allow_unisolated: true to run it as a plain subprocess")
        return command, env, "none (plain subprocess, allowed)"
    if spec.backend == "inline":
        return command, env, "none (plain subprocess)"
    raise SandboxUnsupported(
        f"backend {spec.backend}: third-party MCP servers run under backend inline (plain subprocess) or process; "
        "to run one in a container or pod, build an image that contains it and give source.url")


def _jail_available(spec: SandboxSpec) -> bool:
    from toolzoo.sandbox.process import IsolationUnavailable, isolation_for

    try:
        return isolation_for(spec)[0].startswith("bubblewrap")
    except IsolationUnavailable:
        return False


async def create_source(spec: SandboxSpec, source: SourceSpec | None = None) -> Any:
    """A sandbox serving a third-party MCP server: the process tier's jail where it applies
    (a :class:`~toolzoo.sandbox.process.ProcessSandbox`), else a :class:`SourceSandbox`."""
    """Start (or connect to) the domain's third-party MCP server and open a session to it."""
    if source is None:
        from toolzoo.tools.zoo import get_domain

        source = get_domain(spec.domain).spec.source
        if source is None:
            raise ValueError(f"domain {spec.domain!r} has no source: it is served by toolzoo itself")
    if source.command is not None and spec.backend == "process" and _jail_available(spec):
        from toolzoo.sandbox.process import create_process

        return await create_process(spec, source)
    if source.url is not None:
        session = SourceSession(source.url)
        isolation = "remote (not managed by toolzoo)"
    else:
        argv, env, isolation = plan_command(spec, source)
        session = SourceSession(stdio_params(argv, env=env or None, cwd=spec.options.get("cwd")))
    await session.open()
    return SourceSandbox(spec, source, session, isolation)
