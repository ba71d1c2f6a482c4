"""The Sandbox contract every tier implements, and the factory that picks a tier.

A sandbox runs one domain's tool server (one server per episode: state lives per server)
and, on tiers that run code, a workspace for ``exec`` and files. Every sandbox carries run
and episode labels and an absolute deadline, so a reaper can find and delete what a crashed
driver left behind (``toolzoo sandbox gc``).
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from toolzoo.tools.session import MCPSession, ToolSession

Backend = Literal["inline", "process", "docker", "kubernetes"]
S = TypeVar("S")  # a tier's sandbox class

# Label keys shared by every tier (process groups record them in a registry file).
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_RUN = "toolzoo.dev/run"
LABEL_EPISODE = "toolzoo.dev/episode"
LABEL_DEADLINE = "toolzoo.dev/deadline"


class SandboxLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu: float = 1.0  # cores
    memory_mb: int = 512
    pids: int = 128
    wall_time_s: float = 600.0  # the sandbox's time to live
    output_bytes: int = 1_000_000  # per exec stream
    open_files: int = 256


class SandboxSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Backend = "inline"
    domain: str  # built-in name or path to a domain YAML
    seed: int = 0
    run_id: str = "adhoc"
    episode_id: str = "adhoc"
    limits: SandboxLimits = Field(default_factory=SandboxLimits)
    transport: Literal["direct", "mcp"] = "direct"  # inline only: skip JSON-RPC, or in-memory MCP
    image: str | None = None  # docker / kubernetes
    allow_unisolated: bool = False  # process tier without bubblewrap
    options: dict[str, Any] = Field(default_factory=dict)  # tier-specific settings

    def labels(self, deadline: float) -> dict[str, str]:
        return {LABEL_PART_OF: "toolzoo", LABEL_RUN: self.run_id, LABEL_EPISODE: self.episode_id,
                LABEL_DEADLINE: str(int(deadline))}


class ExecResult(BaseModel):
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    truncated: bool = False


def exec_plan(deadline: float, command: list[str] | str, stdin: str | bytes | None,
              timeout: float | None) -> tuple[float, list[str], bytes | None]:
    """What an ``exec`` runs, the same on every tier: the seconds it may take (the timeout asked
    for, never past the sandbox's deadline: <= 0 once that has passed, see ``deadline_passed``),
    the argv (a string runs under ``sh -c``) and stdin as bytes."""
    remaining = deadline - time.time()
    t = min(timeout if timeout is not None else remaining, remaining)
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    return t, argv, stdin.encode() if isinstance(stdin, str) else stdin


def deadline_passed() -> ExecResult:
    return ExecResult(timed_out=True, stderr="sandbox deadline passed")


class ServerState:
    """The state calls of a tier whose tool server is reached over ``_session``: they go to the
    server, where the domain's state lives (pools reuse a sandbox through ``reset``)."""

    _session: MCPSession | None

    @property
    def session(self) -> ToolSession:
        assert self._session is not None, "sandbox not started"
        return self._session

    async def snapshot(self) -> dict[str, Any]:
        return await self.session.snapshot()

    async def restore(self, state: dict[str, Any]) -> str:
        return await self.session.restore(state)

    async def reset(self, seed: int) -> str:
        """Reseed the server's state."""
        return await self.session._admin("_toolzoo_reset", {"seed": seed})


class SandboxUnsupported(Exception):
    """This tier does not offer the operation (e.g. exec on the inline tier)."""


@runtime_checkable
class Sandbox(Protocol):
    spec: SandboxSpec
    deadline: float  # absolute, time.time() seconds
    isolation: str  # what was actually obtained, e.g. "bubblewrap", "none (allowed)", "docker"

    @property
    def session(self) -> ToolSession: ...

    async def exec(self, command: list[str] | str, stdin: str | None = None, timeout: float | None = None) -> ExecResult: ...

    async def read_file(self, path: str) -> bytes: ...

    async def write_file(self, path: str, data: bytes) -> None: ...

    async def snapshot(self) -> dict[str, Any]: ...

    async def restore(self, state: dict[str, Any]) -> str: ...

    async def close(self) -> None: ...


_TIERS = {
    "inline": "toolzoo.sandbox.inline:create_inline",
    "process": "toolzoo.sandbox.process:create_process",
    "docker": "toolzoo.sandbox.docker:create_docker",
    "kubernetes": "toolzoo.sandbox.kubernetes:create_kubernetes",
}


async def create_sandbox(spec: SandboxSpec) -> Sandbox:
    from toolzoo.tools.zoo import get_domain

    if get_domain(spec.domain).spec.source is not None:  # a third-party MCP server is the tool source
        from toolzoo.sandbox.source import create_source

        return await create_source(spec)
    module, fn = _TIERS[spec.backend].split(":")
    factory = getattr(importlib.import_module(module), fn)
    return await factory(spec)


async def started(sandbox: S) -> S:
    """``sandbox`` once its ``_start`` is done. A failed or cancelled start closes it, so what it
    began (registry entry, processes, container) is not left behind."""
    try:
        await sandbox._start()
    except BaseException:
        await sandbox.close()
        raise
    return sandbox


def deadline_for(spec: SandboxSpec) -> float:
    return time.time() + spec.limits.wall_time_s
