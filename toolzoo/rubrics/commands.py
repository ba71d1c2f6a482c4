"""What the ``toolzoo rubric ...`` and ``toolzoo export sft`` subcommands run (cli.py wires them).
Each prints for a person and returns the process exit code."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from toolzoo.config import LoadError
from toolzoo.core import Task
from toolzoo.llm import LLMClient, LLMConfig
from toolzoo.rubrics.export import export_sft, iter_trajectories
from toolzoo.rubrics.generate import GenerationError, generate_rubric
from toolzoo.rubrics.loader import load_rubric


def validate_command(files: list[str], console: Console | None = None) -> int:
    """``toolzoo rubric validate FILE...``: one line per file; problems as file:line field: message."""
    console = console or Console()
    bad = 0
    for f in files:
        try:
            r = load_rubric(f)
        except LoadError as exc:
            bad += 1
            for p in exc.problems:
                console.print(str(p), markup=False, highlight=False, soft_wrap=True)
            continue
        console.print(f"ok {f}: rubric {r.name} ({len(r.items)} items, {len(r.checks)} checks, "
                      f"{len(r.llm_items())} LLM-judged, {r.spec.aggregation}, version {r.version})",
                      markup=False, highlight=False, soft_wrap=True)
    return 1 if bad else 0


def task_from_run(run_dir: str | Path, episode_id: str) -> Task:
    """The task of a stored episode (``--run RUN --episode ID``; a task id works too)."""
    for traj in iter_trajectories(run_dir):
        if traj.episode_id == episode_id or traj.task.id == episode_id:
            return traj.task
    raise KeyError(f"no episode or task {episode_id!r} in {run_dir}")


def generate_command(task: Task, *, base_url: str | None, model: str, out: str | None = None,
                     api_key_env: str = "OPENAI_API_KEY", attempts: int = 3,
                     console: Console | None = None) -> int:
    """``toolzoo rubric generate``: write a rubric for ``task`` to ``out`` (default stdout)."""
    from toolzoo.tools.zoo import get_domain

    console = console or Console()
    try:
        dom = get_domain(task.domain)
        desc, tools = dom.spec.description, None
    except Exception:  # noqa: BLE001 - generation works without the description
        desc, tools = None, None

    async def go() -> str:
        async with LLMClient(LLMConfig(base_url=base_url, model=model, api_key_env=api_key_env)) as client:
            _, text = await generate_rubric(client, task, domain_description=desc, tools=tools, attempts=attempts,
                                            file=out or "<stdout>")
            return text

    try:
        text = asyncio.run(go())
    except GenerationError as exc:
        console.print(f"rubric generation failed: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 1
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        console.print(f"wrote {out}", markup=False, soft_wrap=True)
    else:
        print(text, end="")
    return 0


def export_sft_command(run: str, out: str, min_score: float, score_name: str | None = None,
                       args_as: str = "string", console: Console | None = None) -> int:
    """``toolzoo export sft RUN --min-score X --out FILE [--score NAME] [--args-as string|object]``."""
    console = console or Console()
    try:
        n = export_sft(run, out, min_score, score_name, args_as=args_as)  # type: ignore[arg-type]
    except FileNotFoundError as exc:
        console.print(str(exc), markup=False, soft_wrap=True)
        return 1
    console.print(f"wrote {n} trajectories to {out}", markup=False, soft_wrap=True)
    return 0
