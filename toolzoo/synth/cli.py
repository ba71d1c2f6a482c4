"""``toolzoo zoo synth``: the command's body (the top-level CLI parses and calls this)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from toolzoo.synth.report import SynthReport


def synth_command(out: str, *, offline: bool = False, count: int = 1000, seed: int = 0,
                  categories: str | list[str] | None = None, domains_per_category: int = 2,
                  tools_per_domain: int = 5, base_url: str | None = None, model: str | None = None,
                  api_key_env: str = "OPENAI_API_KEY", repair_attempts: int = 2, workers: int | None = None,
                  concurrency: int = 4, console: Console | None = None) -> int:
    """Synthesize domains into ``out``; print the report table; 0 when at least one domain was
    accepted (offline: when all ``count`` were), 1 otherwise, 2 on bad options."""
    console = console or Console()
    if offline:
        from toolzoo.synth.offline import synthesize_offline

        report = synthesize_offline(count, seed, out, workers=workers, progress=True)
        _print(console, report, out)
        return 0 if report.accepted == count else 1
    if not model:
        console.print("[red]zoo synth:[/red] --model is required without --offline")
        return 2
    from toolzoo.llm import LLMClient, LLMConfig
    from toolzoo.synth.llm_synth import SynthParams, synthesize_llm

    cats = [c.strip() for c in categories.split(",") if c.strip()] if isinstance(categories, str) else categories
    params = SynthParams(categories=cats or None, domains_per_category=domains_per_category,
                         tools_per_domain=tools_per_domain, repair_attempts=repair_attempts, concurrency=concurrency)
    config = LLMConfig(model=model, base_url=base_url, api_key_env=api_key_env)

    async def main() -> SynthReport:
        async with LLMClient(config) as client:
            return await synthesize_llm(client, params, out)

    report = asyncio.run(main())
    _print(console, report, out)
    return 0 if report.accepted else 1


def _print(console: Console, report: SynthReport, out: str) -> None:
    report.print(console)
    console.print(f"domains: {out}  report: {Path(out) / 'synth_report.json'}")
