"""Import a real MCP server's tools as a toolzoo domain YAML (``toolzoo zoo import-mcp``).

Connects to the server (``--command`` over stdio or ``--url`` over streamable HTTP), lists its
tools and writes one domain file that keeps each tool's name, description and input schema:

- ``passthrough``: the domain carries ``source:`` (the same command or URL), so a source
  sandbox (:mod:`toolzoo.sandbox.source`) sends every call to that server. The tools are
  listed for their schemas and declare no executor (the source server runs them).
- ``simulate``: no source; every tool is ``simulate: llm`` (an LLM world model answers).

Either way a tool keeps the server's ``readOnlyHint`` as ``read_only``.

Tools whose names toolzoo cannot carry (outside ``[A-Za-z0-9_.-]{1,64}``) or whose schemas are
not objects are left out and reported.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from mcp import Client
from pydantic import BaseModel

from toolzoo.tools.session import stdio_params

Mode = Literal["passthrough", "simulate"]
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ImportedTool(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    read_only: bool | None = None  # the server's readOnlyHint, when it gives one


class ImportReport(BaseModel):
    server: str
    tools: list[ImportedTool]
    skipped: list[str]  # "name: why"


def domain_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower() or "imported"
    return name if re.match(r"[A-Za-z_]", name) else f"mcp_{name}"


async def list_server_tools(command: list[str] | None, url: str | None, env: dict[str, str] | None = None) -> ImportReport:
    if (command is None) == (url is None):
        raise ValueError("give exactly one of command, url")
    target: Any = url if url is not None else stdio_params(command, env=env)
    async with Client(target) as client:
        info = client.server_info
        server = getattr(info, "name", None) or (command[0] if command else url) or "imported"
        listed = await client.list_tools()
    tools, skipped = [], []
    for t in listed.tools:
        schema = dict(t.input_schema or {"type": "object", "properties": {}})
        if not _TOOL_NAME.match(t.name):
            skipped.append(f"{t.name}: name is not 1-64 of [A-Za-z0-9_.-]")
        elif schema.get("type") != "object":
            skipped.append(f"{t.name}: input schema is not of type object")
        else:
            hint = t.annotations.read_only_hint if t.annotations is not None else None
            tools.append(ImportedTool(name=t.name, description=(t.description or "").strip(), parameters=schema,
                                      read_only=hint))
    return ImportReport(server=str(server), tools=tools, skipped=skipped)


def domain_document(report: ImportReport, mode: Mode, command: list[str] | None, url: str | None,
                    env: dict[str, str] | None = None, name: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "domain": name or domain_name(report.server),
        "category": "imported",
        "description": f"Imported from the MCP server {report.server!r}"
                       + (" (calls pass through to it)." if mode == "passthrough" else " (tools simulated by an LLM)."),
    }
    if mode == "passthrough":
        source: dict[str, Any] = {"command": list(command)} if command is not None else {"url": url}
        if env:
            source["env"] = dict(env)
        doc["source"] = source
    executor = {} if mode == "passthrough" else {"simulate": "llm"}  # source tools run on the source
    doc["tools"] = [{"name": t.name, "description": t.description, "parameters": t.parameters, **executor,
                     **({} if t.read_only is None else {"read_only": t.read_only})}
                    for t in report.tools]
    return doc


async def import_mcp(command: list[str] | None, url: str | None, out: Path, mode: Mode = "passthrough",
                     *, env: dict[str, str] | None = None, name: str | None = None) -> Path:
    """Connect, list tools, write the domain YAML to ``out`` and check that it loads."""
    from toolzoo.tools.loader import load_domain

    report = await list_server_tools(command, url, env)
    doc = domain_document(report, mode, command, url, env, name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Written by `toolzoo zoo import-mcp` ({mode}).\n"
    if report.skipped:
        header += "".join(f"# skipped {s}\n" for s in report.skipped)
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))
    load_domain(out)  # a file that does not load is a bug here, not the user's problem later
    return out


def import_mcp_command(command: list[str] | None, url: str | None, out: str | Path, simulate: bool = False,
                       name: str | None = None) -> int:
    """CLI entry: prints the written path and tool count; 0 ok, 1 connection/load failure, 2 bad input."""
    import anyio

    if (command is None) == (url is None) or (command is not None and not command):
        print("toolzoo zoo import-mcp: give exactly one of --command or --url", file=sys.stderr)
        return 2
    mode: Mode = "simulate" if simulate else "passthrough"
    try:
        path = anyio.run(lambda: import_mcp(command, url, Path(out), mode, name=name))
    except Exception as exc:  # connection refused, server crashed, YAML did not load
        with contextlib.suppress(Exception):
            exc = exc.exceptions[0] if isinstance(exc, BaseExceptionGroup) else exc  # type: ignore[attr-defined]
        print(f"toolzoo zoo import-mcp: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    n = len(yaml.safe_load(Path(path).read_text()).get("tools", []))
    print(f"wrote {path} ({mode}, {n} tools)")
    return 0
