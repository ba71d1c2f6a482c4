"""The ``toolzoo`` command. Subcommands import what they need lazily, so ``toolzoo --help``
and light commands start fast."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def _zoo_list(args: argparse.Namespace) -> int:
    from toolzoo.tools.zoo import builtin_names, get_domain

    rows = []
    for name in builtin_names():
        d = get_domain(name)
        rows.append({"domain": d.name, "category": d.spec.category, "tools": [t.name for t in d.spec.tools],
                     "subtasks": [s.id for s in d.spec.subtasks], "description": d.spec.description})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="toolzoo built-in domains")
    for col in ("domain", "category", "tools", "subtasks", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["domain"], r["category"], str(len(r["tools"])), str(len(r["subtasks"])), r["description"])
    console.print(table)
    return 0


def _zoo_show(args: argparse.Namespace) -> int:
    from toolzoo.tools.zoo import get_domain

    d = get_domain(args.name)
    console.print(f"[bold]{d.name}[/bold] ({d.spec.category}) — {d.spec.description}")
    table = Table(title="state")
    table.add_column("collection"), table.add_column("key"), table.add_column("fields"), table.add_column("seeded")
    for name, coll in d.spec.state.items():
        seeded = d.spec.seed[name].count if name in d.spec.seed else 0
        table.add_row(name, coll.key, ", ".join(coll.schema_.get("properties", {})), str(seeded))
    console.print(table)
    table = Table(title="tools")
    table.add_column("tool"), table.add_column("kind"), table.add_column("parameters"), table.add_column("description")
    for t in d.spec.tools:
        kind = "effects" if t.effects is not None else ("impl" if t.impl else "simulated (llm)")
        table.add_row(t.name, kind, ", ".join(t.parameters.get("properties", {})), t.description)
    console.print(table)
    table = Table(title="goal templates (subtasks)")
    table.add_column("id"), table.add_column("kind"), table.add_column("ask")
    for s in d.spec.subtasks:
        kind = "answer" if s.answer else "mutate"
        table.add_row(s.id, kind + (" + chained" if s.uses_prev else ""), s.ask)
    console.print(table)
    return 0


def _zoo_validate(args: argparse.Namespace) -> int:
    from toolzoo.config import LoadError
    from toolzoo.tools.loader import load_domain
    from toolzoo.tools.zoo import builtin_names, resolve_path

    targets = args.targets or builtin_names()
    failed = 0
    for target in targets:
        try:
            path = resolve_path(target)
            d = load_domain(path)
            console.print(f"[green]ok[/green] {path} ({d.name}: {len(d.spec.tools)} tools, {len(d.spec.subtasks)} subtasks)")
        except LoadError as exc:
            failed += 1
            for problem in exc.problems:
                err_console.print(f"[red]error[/red] {problem}", markup=True, highlight=False)
        except FileNotFoundError as exc:
            failed += 1
            err_console.print(f"[red]error[/red] {exc}")
    return 1 if failed else 0


def _schema(args: argparse.Namespace) -> int:
    from toolzoo import schemas

    print(json.dumps(schemas.json_schema(args.format), indent=2))
    return 0


def _serve_mcp(args: argparse.Namespace) -> int:
    from toolzoo.tools.server import DomainServer, run_http, run_stdio
    from toolzoo.tools.zoo import get_domain

    server = DomainServer(get_domain(args.domain), seed=args.seed, admin=not args.no_admin)
    if args.transport == "stdio":
        run_stdio(server)
    else:
        run_http(server, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolzoo", description="Agentic-RL tool domains, episodes, judges and training.")
    sub = parser.add_subparsers(dest="command", required=True)

    zoo = sub.add_parser("zoo", help="the built-in domains").add_subparsers(dest="zoo_command", required=True)
    p = zoo.add_parser("list", help="list built-in domains")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_zoo_list)
    p = zoo.add_parser("show", help="show one domain")
    p.add_argument("name")
    p.set_defaults(func=_zoo_show)
    p = zoo.add_parser("validate", help="validate built-in domains or YAML files (all built-ins when none given)")
    p.add_argument("targets", nargs="*")
    p.set_defaults(func=_zoo_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of a YAML format")
    p.add_argument("format", choices=["domain", "rubric", "run", "train"])
    p.set_defaults(func=_schema)

    p = sub.add_parser("serve-mcp", help="serve a domain as an MCP server")
    p.add_argument("domain", help="built-in domain name or path to a domain YAML")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-admin", action="store_true", help="hide the snapshot/restore admin tools")
    p.set_defaults(func=_serve_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except FileNotFoundError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
