from __future__ import annotations

import asyncio

from toolzoo.envs.episode import Limits, run_episode
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.sandbox import SandboxSpec, create_sandbox
from toolzoo.tools.zoo import builtin_names, get_domain

# Domains whose tools are all CEL effects (the code workspace runs code: it needs a sandbox tier).
EFFECT_DOMAINS = [n for n in builtin_names() if all(t.effects is not None for t in get_domain(n).spec.tools)]


def play(task, agent, user=None, limits=None, episode_id="e"):
    async def main():
        # The test host runs code_workspace tools in-process: accepted here on purpose.
        sandbox = await create_sandbox(SandboxSpec(domain=task.domain, seed=task.seed, allow_unisolated=True))
        try:
            return await run_episode(task, agent, user or ScriptedUser(), sandbox.session, episode_id=episode_id,
                                     limits=limits or Limits())
        finally:
            await sandbox.close()
    return asyncio.run(main())


def sim_domain_yaml(name: str, notes: int = 2) -> str:
    """A domain with one CEL tool (notes) and one ``simulate: llm`` tool (weather)."""
    return SIM_DOMAIN_TEMPLATE.replace("@NAME@", name).replace("@COUNT@", str(notes))


SIM_DOMAIN_TEMPLATE = """
domain: @NAME@
state:
  notes: {key: id, schema: {type: object, properties: {id: {type: string}, text: {type: string}}}}
seed:
  notes: {count: @COUNT@, fields: {id: {pattern: "n{i}"}, text: {value: hello}}}
tools:
  - name: get_note
    parameters: {type: object, properties: {id: {type: string}}, required: [id]}
    effects:
      - require: "args.id in state.notes"
      - return: "state.notes[args.id].text"
  - name: get_weather
    description: Current weather in a city.
    parameters: {type: object, properties: {city: {type: string}}, required: [city]}
    simulate: llm
subtasks:
  - id: read
    bind: {n: "pick(state.notes.filter(k, true))"}
    ask: "What does note {n} say?"
    solution: [{tool: get_note, args: {id: "n"}}]
    answer: "state.notes[n].text"
"""
