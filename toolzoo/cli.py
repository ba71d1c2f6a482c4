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


def _print_success_table(summary: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    for col in ("length", "episodes", "successes", "rate"):
        table.add_column(col, justify="right")
    for length, row in summary["by_length"].items():
        rate = row["rate"]
        table.add_row(length, str(row["episodes"]), str(row["successes"]), "-" if rate is None else f"{rate:.3f}")
    console.print(table)
    console.print(f"infra errors: {summary['infra_errors']}   user-sim errors: {summary['user_sim_errors']}   "
                  f"judge errors: {summary.get('judge_errors', 0)}")


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from toolzoo.config import LoadError
    from toolzoo.envs.run_config import load_run_config
    from toolzoo.envs.runner import Runner

    try:
        config = load_run_config(args.config)
    except LoadError as exc:
        for problem in exc.problems:
            err_console.print(f"[red]error[/red] {problem}", highlight=False)
        return 2
    if args.output:
        config.output = args.output
    if args.ray is not None:
        from toolzoo.cluster.ray_runner import run_on_ray

        summary = run_on_ray(config, address=args.ray or None, resume=args.resume, overwrite=args.overwrite)
    else:
        try:
            summary = asyncio.run(Runner(config, resume=args.resume, overwrite=args.overwrite).run(progress=not args.quiet))
        except FileExistsError as exc:
            err_console.print(f"[red]error[/red] {exc}")
            return 2
    _print_success_table(summary, f"{config.run}: success by length")
    if config.report and summary["episodes"]:
        from toolzoo.analysis.report import write_report

        try:
            blocks = write_report([Path(config.output)])
            hl = blocks.get("half_life") or {}
            if hl.get("t50") is not None:
                lo, hi = (hl.get("ci") or [None, None])[:2]
                bound = lambda v: "∞" if v is None else f"{v:.2f}"  # noqa: E731 (an unbounded side is None)
                console.print(f"half-life T50 = {hl['t50']:.2f} subtasks (95% CI {bound(lo)}–{bound(hi)}, "
                              f"model {hl.get('model')})")
        except Exception as exc:  # the episodes are safe on disk; a report problem must not hide them
            err_console.print(f"[yellow]report failed[/yellow]: {type(exc).__name__}: {exc}")
    console.print(f"output: {config.output}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from toolzoo.analysis.report import report_command

    return report_command(args.runs, args.out, args.log_scale)


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

    p = sub.add_parser("run", help="run episodes from a Run config and write trajectories, summary and report")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true", help="continue a killed run (skips stored episodes)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing output folder's episodes")
    p.add_argument("--output", help="override the config's output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: a local cluster, or the cluster at ADDRESS")
    p.set_defaults(func=_run)

    p = sub.add_parser("report", help="half-life report (PNG, HTML, summary.json) for one or more runs")
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", help="folder for the report (default: the first run's folder)")
    p.add_argument("--log-scale", action="store_true", help="log-scale length axis")
    p.set_defaults(func=_report)

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
