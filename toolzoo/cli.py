"""The ``toolzoo`` command. Subcommands import what they need lazily, so ``toolzoo --help``
and light commands start fast."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from toolzoo.config import LoadError

console = Console(soft_wrap=True)  # one line per message when piped (tables still fit the width)
err_console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def _print_problems(exc: LoadError) -> None:
    """Each problem of a config that did not load, one line apiece."""
    from rich.markup import escape

    for problem in exc.problems:
        # Verbatim (a CEL `[...]` is not rich markup) and unwrapped: one problem, one line.
        text = " ".join(str(problem).splitlines())
        err_console.print(f"[red]error[/red] {escape(text)}", highlight=False, soft_wrap=True)


def _load_config(load: Callable[[str], T], path: str) -> T | None:
    """``load(path)``, or None once the problems of a bad config are printed (callers exit 2)."""
    from toolzoo.config import LoadError

    try:
        return load(path)
    except LoadError as exc:
        _print_problems(exc)
        return None


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
    """Load each file (every problem, file:line), then place every goal template on seeded states:
    a template whose solution fails with its bindings held is an error (file:line and the step).
    ``--deep`` tries N seeds and also reports templates that never generate."""
    from toolzoo.config import LoadError
    from toolzoo.synth.validate import template_check
    from toolzoo.tools.loader import load_domain
    from toolzoo.tools.zoo import builtin_names, resolve_path

    targets = args.targets or builtin_names()
    seeds = range(args.seeds if args.deep else 1)
    failed = 0
    for target in targets:
        try:
            path = resolve_path(target)
            d = load_domain(path)
        except LoadError as exc:
            failed += 1
            _print_problems(exc)
            continue
        except FileNotFoundError as exc:
            failed += 1
            err_console.print(f"[red]error[/red] {exc}", markup=False, highlight=False)
            continue
        issues = template_check(d, seeds, never_generates=args.deep)
        for issue in issues:
            err_console.print(f"error [{issue.reason}] {issue.detail}", markup=False, highlight=False, soft_wrap=True)
        if issues:
            failed += 1
            continue
        console.print(f"[green]ok[/green] {path} ({d.name}: {len(d.spec.tools)} tools, {len(d.spec.subtasks)} subtasks"
                      + (f", every template generates on {len(seeds)} seeds" if args.deep else "") + ")",
                      highlight=False)
    return 1 if failed else 0


def _schema(args: argparse.Namespace) -> int:
    from toolzoo import schemas

    print(json.dumps(schemas.json_schema(args.format), indent=2))
    return 0


def _serve_mcp(args: argparse.Namespace) -> int:
    from toolzoo.tools.server import DomainServer, read_secret_fd, read_secret_file, run_http, run_stdio
    from toolzoo.tools.zoo import get_domain

    # Admin tools only when asked for, and then only for callers holding the secret.
    if args.admin and not args.admin_secret_file and args.admin_secret_fd is None:
        raise SystemExit("serve-mcp: --admin needs --admin-secret-file (a file only this server's user can read) "
                         "or --admin-secret-fd")
    secret = None
    if args.admin:
        secret = read_secret_fd(args.admin_secret_fd) if args.admin_secret_fd is not None \
            else read_secret_file(args.admin_secret_file)
    server = DomainServer(get_domain(args.domain), seed=args.seed, admin=args.admin, admin_secret=secret)
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
                  f"judge errors: {summary.get('judge_errors', 0)}   harness errors: {summary.get('harness_errors', 0)}")


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from toolzoo.envs.run_config import load_run_config
    from toolzoo.envs.runner import HarnessFailures, RunChanged, Runner

    config = _load_config(load_run_config, args.config)
    if config is None:
        return 2
    if args.output:
        config.output = args.output
    try:
        if args.ray is not None:
            from toolzoo.cluster.ray_runner import run_on_ray

            summary = run_on_ray(config, address=args.ray or None, resume=args.resume, overwrite=args.overwrite,
                                 progress=not args.quiet, base_dir=Path(args.config).parent,
                                 retry_infra=args.retry_infra)
        else:
            runner = Runner(config, resume=args.resume, overwrite=args.overwrite, base_dir=Path(args.config).parent,
                            retry_infra=args.retry_infra)
            summary = asyncio.run(runner.run(progress=not args.quiet))
    except (FileExistsError, RunChanged) as exc:
        err_console.print(f"[red]error[/red] {exc}")
        return 2
    except HarnessFailures as exc:
        err_console.print(f"[red]error[/red] {exc}")
        return 3
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
    from toolzoo.rubrics.apply import audit_table

    code = report_command(args.runs, args.out, args.log_scale)
    for run in args.runs:
        summary_path = Path(run) / "summary.json"
        if summary_path.exists():
            table = audit_table(json.loads(summary_path.read_text()))
            if table is not None:
                console.print(table)
    return code


def _analyze(args: argparse.Namespace) -> int:
    from toolzoo.analysis.analyze_cmd import analyze_command

    return analyze_command(args)


def _rubric_validate(args: argparse.Namespace) -> int:
    from toolzoo.rubrics.commands import validate_command

    return validate_command(args.files)


def _rubric_generate(args: argparse.Namespace) -> int:
    from toolzoo.rubrics.commands import generate_command, task_from_run

    if args.run:
        if not args.episode:
            err_console.print("[red]error[/red] --run needs --episode ID")
            return 2
        task = task_from_run(args.run, args.episode)
    elif args.task:
        from toolzoo.envs.taskgen import TaskGenerator
        from toolzoo.tools.zoo import get_domain

        try:
            domain, seed, length = args.task.rsplit(":", 2)
            task = TaskGenerator(get_domain(domain)).generate(int(seed), int(length))
        except ValueError:
            err_console.print("[red]error[/red] --task takes DOMAIN:SEED:LENGTH")
            return 2
    else:
        err_console.print("[red]error[/red] give --task DOMAIN:SEED:LENGTH or --run RUN --episode ID")
        return 2
    return generate_command(task, base_url=args.base_url, model=args.model, out=args.out,
                            api_key_env=args.api_key_env, attempts=args.attempts)


def _export_sft(args: argparse.Namespace) -> int:
    from toolzoo.rubrics.commands import export_sft_command

    return export_sft_command(args.run, args.out, args.min_score, args.score, args.args_as)


def _k8s_render(args: argparse.Namespace) -> int:
    from toolzoo.cluster.k8s_render import render_command

    return render_command(args.config, args.overlay, args.out, check=args.check)


def _import_mcp(args: argparse.Namespace) -> int:
    import shlex

    from toolzoo.tools.mcp_import import import_mcp_command

    if (args.command is None) == (args.url is None):
        err_console.print("[red]error[/red] give exactly one of --command or --url")
        return 2
    command = shlex.split(args.command) if args.command else None
    return import_mcp_command(command, args.url, args.out, simulate=args.simulate, name=args.name)


def _zoo_synth(args: argparse.Namespace) -> int:
    from toolzoo.synth.cli import synth_command

    return synth_command(args.out, offline=args.offline, count=args.count, seed=args.seed, categories=args.categories,
                         domains_per_category=args.domains_per_category, tools_per_domain=args.tools_per_domain,
                         base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
                         repair_attempts=args.repair_attempts, workers=args.workers, console=console)


def _sandbox_gc(args: argparse.Namespace) -> int:
    from toolzoo.sandbox.reaper import gc_command

    return gc_command(args.run, expired=args.expired)


def _train(args: argparse.Namespace) -> int:
    from toolzoo.trainer.config import load_train_config
    from toolzoo.trainer.loop import print_summary, train

    cfg = _load_config(load_train_config, args.config)
    if cfg is None:
        return 2
    try:
        if args.ray is not None:  # the cluster layer sits above the trainer: chosen here
            from toolzoo.cluster.ray_train import train_on_ray

            summary = train_on_ray(cfg, address=args.ray or None, resume=args.resume, progress=not args.quiet)
        else:
            summary = train(cfg, resume=args.resume, progress=not args.quiet)
    except ValueError as exc:  # e.g. an algorithm the Ray learner does not run
        err_console.print(f"[red]error[/red] {exc}")
        return 2
    print_summary(summary)
    return 0


def _serve_model(args: argparse.Namespace) -> int:
    from toolzoo.trainer.serve import serve_model

    serve_model(args.checkpoint, host=args.host, port=args.port, model_name=args.model_name,
                max_new_tokens=args.max_new_tokens, device=args.device)
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
    p.add_argument("--deep", action="store_true",
                   help="place every goal template on N seeds and report any that never generate")
    p.add_argument("--seeds", type=int, default=5, help="seeds for --deep (default 5)")
    p.set_defaults(func=_zoo_validate)

    p = sub.add_parser("run", help="run episodes from a Run config and write trajectories, summary and report")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true", help="continue a killed run (skips stored episodes)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing output folder's episodes")
    p.add_argument("--retry-infra", action="store_true",
                   help="with --resume: re-run the stored infra and harness failures")
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

    p = sub.add_parser("analyze", help="time horizons (T50) of any success data: CSV, JSONL or run folders")
    p.add_argument("files", nargs="+", help="CSV/JSONL (agent, task, family, length, success|score, weight) or run folders")
    p.add_argument("--length-unit", help="unit of the lengths, for labels (default: minutes for human_minutes, subtasks for runs)")
    p.add_argument("--fit", choices=("exponential", "weibull", "logistic", "auto"), default="auto",
                   help="model (auto: constant hazard unless the LR test prefers Weibull)")
    p.add_argument("--l2", type=float, default=None, help="L2 penalty on the logistic slope (METR: 0.1)")
    p.add_argument("--weights", help="weight column, or a scheme: invsqrt (METR), equal_task, none")
    p.add_argument("--metr", action="store_true", help="METR's estimator: --fit logistic --l2 0.1 --weights invsqrt")
    p.add_argument("--json", help="write {'agents': {NAME: {t50, ci, model, n, ...}}} here")
    p.add_argument("--out", help="folder for plots and report.html")
    p.add_argument("--reps", type=int, default=1000, help="bootstrap replicates (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base", help="agent the others are compared with (default: the first)")
    p.add_argument("--bootstrap", choices=("family", "metr"), default="family",
                   help="family: resample task families (headline, calibrated); metr: family -> task -> run")
    p.set_defaults(func=_analyze)

    rubric = sub.add_parser("rubric", help="rubrics: validate and generate").add_subparsers(dest="rubric_command", required=True)
    p = rubric.add_parser("validate", help="validate rubric YAML files")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_rubric_validate)
    p = rubric.add_parser("generate", help="an LLM writes a task-specific rubric (RaR-style)")
    p.add_argument("--task", help="DOMAIN:SEED:LENGTH of a generated task")
    p.add_argument("--run", help="a run folder (with --episode)")
    p.add_argument("--episode", help="an episode or task id in --run")
    p.add_argument("--base-url", default=None)
    p.add_argument("--model", required=True)
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--attempts", type=int, default=3)
    p.add_argument("--out", help="write the rubric YAML here (default: stdout)")
    p.set_defaults(func=_rubric_generate)

    export = sub.add_parser("export", help="export trajectories").add_subparsers(dest="export_command", required=True)
    p = export.add_parser("sft", help="judge-filtered chat JSONL (with tool definitions) for SFT")
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.add_argument("--min-score", type=float, default=1.0)
    p.add_argument("--score", default=None, help="which score to filter on (default: the combined reward)")
    p.add_argument("--args-as", choices=["string", "object"], default="string")
    p.set_defaults(func=_export_sft)

    p = zoo.add_parser("synth", help="synthesize validated domains (offline grammar, or an LLM)")
    p.add_argument("--out", required=True)
    p.add_argument("--offline", action="store_true", help="procedural generator, no LLM")
    p.add_argument("--count", type=int, default=1000, help="offline: how many domains")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--categories", help="LLM: comma-separated categories to evolve")
    p.add_argument("--domains-per-category", type=int, default=2)
    p.add_argument("--tools-per-domain", type=int, default=5)
    p.add_argument("--base-url", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--repair-attempts", type=int, default=2)
    p.add_argument("--workers", type=int, default=None, help="validation processes (default: CPUs)")
    p.set_defaults(func=_zoo_synth)

    p = zoo.add_parser("import-mcp", help="write a domain YAML for a real MCP server's tools")
    p.add_argument("--command", help="the server's command line (quoted), run over stdio")
    p.add_argument("--url", help="a streamable-HTTP server URL")
    p.add_argument("--out", required=True)
    p.add_argument("--simulate", action="store_true", help="tools simulated by an LLM instead of passed through")
    p.add_argument("--name", help="domain name (default: from the server)")
    p.set_defaults(func=_import_mcp)

    k8s = sub.add_parser("k8s", help="Kubernetes manifests").add_subparsers(dest="k8s_command", required=True)
    p = k8s.add_parser("render", help="print the manifests (kustomize base + overlay) for a run or train config")
    p.add_argument("config", nargs="?")
    p.add_argument("--overlay", default="dev", choices=["dev", "gpu", "gvisor"])
    p.add_argument("--out")
    p.add_argument("--check", action="store_true", help="validate strictly against the official schemas first")
    p.set_defaults(func=_k8s_render)

    sandbox = sub.add_parser("sandbox", help="sandboxes").add_subparsers(dest="sandbox_command", required=True)
    p = sandbox.add_parser("gc", help="remove sandboxes a crashed driver left behind (process groups, containers)")
    p.add_argument("--run", help="only this run's sandboxes (all of them, even if their driver lives)")
    p.add_argument("--expired", action="store_true", help="also sandboxes past their deadline")
    p.set_defaults(func=_sandbox_gc)

    p = sub.add_parser("train", help="train a policy (SFT, GRPO family, π-Distill, OPSD) from a Train config")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="rollouts on Ray actors: a local cluster, or the cluster at ADDRESS")
    p.set_defaults(func=_train)

    p = sub.add_parser("serve-model", help="an OpenAI-compatible chat-completions server for a local checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model-name", default=None)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--device", default="auto", help="auto (cuda when torch sees one), cpu, cuda, cuda:N or mps")
    p.set_defaults(func=_serve_model)

    from toolzoo.models.cli import add_model_commands  # `toolzoo model ...` (toolzoo/models/cli.py)

    add_model_commands(sub)

    p = sub.add_parser("schema", help="print the JSON Schema of a YAML format")
    p.add_argument("format", choices=["domain", "rubric", "run", "train"])
    p.set_defaults(func=_schema)

    p = sub.add_parser("serve-mcp", help="serve a domain as an MCP server")
    p.add_argument("domain", help="built-in domain name or path to a domain YAML")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--admin", action="store_true",
                   help="offer the _toolzoo_* admin tools (snapshot/restore/reset/hash) to callers whose "
                        "request _meta carries the secret from --admin-secret-file; off by default")
    p.add_argument("--admin-secret-file", default=None, help="file holding the admin secret (>= 16 chars)")
    p.add_argument("--admin-secret-fd", type=int, default=None,
                   help="read the admin secret from this inherited file descriptor (then closed)")
    p.add_argument("--no-admin", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
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
