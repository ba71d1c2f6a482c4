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
        sandbox = await create_sandbox(SandboxSpec(domain=task.domain, seed=task.seed))
        try:
            return await run_episode(task, agent, user or ScriptedUser(), sandbox.session, episode_id=episode_id,
                                     limits=limits or Limits())
        finally:
            await sandbox.close()
    return asyncio.run(main())
