"""Tool-subset sampling: each episode sees the tools its task needs plus sampled distractors.

As in Kimi K2's recipe, an episode's toolset is a random subset drawn from one or several
domains, introduced by a generated system prompt that describes the agent's role. Configured
in the run YAML::

    tool_subset:
      extra_domains: [bank_accounts, helpdesk_tickets]   # distractor domains (names or paths)
      extra_tools: 6          # K distractor tools, drawn from the task domain's unused tools
                              # and every extra domain's tools
      seed: 0                 # with the episode id, fixes each episode's draw
      system_prompt: generate # generate | none (keep the task's own prompt)

The tools the task's reference solution uses are always offered, so every task stays
solvable; distractors whose names clash with an offered tool are skipped. Distractor domains
run in-process (a fresh seeded server per episode, whatever the task's sandbox tier): their
state is scratch space that no judge reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from toolzoo.core import Task, ToolSpecView
from toolzoo.tools.composite import CompositeSession
from toolzoo.tools.loader import Domain
from toolzoo.tools.server import DomainServer
from toolzoo.tools.session import DirectSession, ToolSession
from toolzoo.tools.zoo import get_domain


class ToolSubsetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extra_domains: list[str] = Field(default_factory=list)
    extra_tools: int = Field(4, ge=0)
    seed: int = 0
    system_prompt: Literal["generate", "none"] = "generate"


_ROLES = {
    "commerce": "a customer-service agent", "healthcare": "a clinical operations assistant",
    "travel": "a travel operations agent", "education": "a registrar's assistant",
    "logistics": "a logistics coordinator", "finance": "a financial operations assistant",
    "hospitality": "a front-desk assistant", "media": "a content operations assistant",
    "manufacturing": "a production planner", "government": "a public-service clerk",
    "energy": "a grid operations assistant", "agriculture": "a farm operations assistant",
    "sports": "a league operations assistant", "science": "a lab operations assistant",
    "support": "a support desk agent",
}
_STYLES = [
    "Work carefully: check records before you change them, and change only what you are asked to.",
    "Be concise. Use the tools to act, and state any requested information plainly.",
    "Confirm facts with the tools rather than guessing; report results clearly.",
]


def needed_tools(task: Task) -> list[str]:
    """Tools the task's reference solution calls, in first-use order."""
    seen: dict[str, None] = {}
    for sub in task.subtasks:
        for step in sub.solution:
            seen.setdefault(step.tool, None)
    return list(seen)


def sample_tool_subset(task: Task, primary_tools: list[ToolSpecView], other_domains: list[Domain], k: int,
                       rng: random.Random, *, primary: Domain | None = None,
                       system_prompt: Literal["generate", "none"] = "generate") -> tuple[list[str], str | None]:
    """(tool names offered, system prompt or None). Needed tools always; then ``k`` distinct
    distractors from the primary's other tools and the other domains' tools; shuffled."""
    needed = needed_tools(task)
    names = set(needed)
    pool: list[tuple[str, str]] = [(t.name, task.domain) for t in primary_tools if t.name not in names]
    for d in other_domains:
        pool += [(t.name, d.name) for t in d.spec.tools if t.name not in names]
    rng.shuffle(pool)
    chosen: list[tuple[str, str]] = []
    for name, dom in pool:
        if len(chosen) >= k:
            break
        if name not in names:
            names.add(name)
            chosen.append((name, dom))
    offered = needed + [n for n, _ in chosen]
    rng.shuffle(offered)
    if system_prompt == "none":
        return offered, task.system_prompt
    domains = [primary] if primary is not None else []
    domains += [d for d in other_domains if any(dom == d.name for _, dom in chosen)]
    return offered, generate_system_prompt(task, domains, len(offered), rng)


def generate_system_prompt(task: Task, domains: list[Domain], n_tools: int, rng: random.Random) -> str:
    """A role prompt from the offered domains' categories and descriptions (no LLM needed)."""
    category = domains[0].spec.category if domains else "general"
    role = _ROLES.get(category, "an operations assistant")
    areas = "; ".join(f"{d.spec.description.strip().rstrip('.')}" for d in domains if d.spec.description) \
        or f"the {task.domain} domain"
    parts = [f"You are {role}. You have {n_tools} tools covering: {areas}.", rng.choice(_STYLES)]
    if task.system_prompt:  # the domain's own rules still hold
        parts.append(task.system_prompt.strip())
    return " ".join(parts)


@dataclass
class SubsetEpisode:
    """What an episode runs with: the composite session and the task with its new prompt."""

    session: CompositeSession
    task: Task
    offered: list[str]
    _extra: list[ToolSession] = field(default_factory=list)

    async def close(self) -> None:
        """Closes the distractor sessions (the primary belongs to its sandbox)."""
        for s in self._extra:
            await s.close()


async def open_tool_subset(task: Task, primary: ToolSession, section: ToolSubsetConfig | dict[str, Any],
                           episode_id: str) -> SubsetEpisode:
    config = section if isinstance(section, ToolSubsetConfig) else ToolSubsetConfig.model_validate(section)
    others = [get_domain(d) for d in config.extra_domains]
    others = [d for d in others if d.name != task.domain]
    rng = random.Random(f"subset:{config.seed}:{episode_id}")
    primary_tools = await primary.list_tools()
    primary_domain = _try_domain(task.domain)
    offered, prompt = sample_tool_subset(task, primary_tools, others, config.extra_tools, rng,
                                         primary=primary_domain, system_prompt=config.system_prompt)
    extra: list[ToolSession] = [DirectSession(DomainServer(d, seed=task.seed).runtime) for d in others]
    session = CompositeSession(primary, extra, offered)
    return SubsetEpisode(session=session, task=task.model_copy(update={"system_prompt": prompt}),
                         offered=offered, _extra=extra)


def _try_domain(name: str) -> Domain | None:
    try:
        return get_domain(name)
    except (FileNotFoundError, OSError):
        return None
