"""Tool-subset sampling: needed tools always offered, distractors from other domains, routing."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings, strategies as st

from toolzoo.agents.scripted import OracleAgent
from toolzoo.envs.episode import run_episode
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.envs.taskgen import TaskGenerator
from toolzoo.envs.tool_subset import needed_tools, open_tool_subset, sample_tool_subset
from toolzoo.tools.composite import CompositeSession
from toolzoo.tools.server import DomainServer
from toolzoo.tools.session import DirectSession
from toolzoo.tools.zoo import get_domain

RETAIL, BANK, HELP = get_domain("retail_orders"), get_domain("bank_accounts"), get_domain("helpdesk_tickets")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 6), k=st.integers(0, 30))
def test_sample_always_offers_needed_tools(seed: int, length: int, k: int) -> None:
    task = TaskGenerator(RETAIL).generate(seed, length)
    views = DirectSession(DomainServer(RETAIL).runtime)
    primary = asyncio.run(views.list_tools())
    offered, prompt = sample_tool_subset(task, primary, [BANK, HELP], k, random.Random(seed), primary=RETAIL)
    need = needed_tools(task)
    assert set(need) <= set(offered) and len(offered) == len(set(offered))
    pool = {t.name for t in primary} | {t.name for t in BANK.spec.tools} | {t.name for t in HELP.spec.tools}
    assert len(offered) == min(len(need) + k, len(pool))
    assert prompt and prompt.startswith("You are ")
    again, _ = sample_tool_subset(task, primary, [BANK, HELP], k, random.Random(seed), primary=RETAIL)
    assert again == offered  # seeded


def test_composite_routes_by_name_and_keeps_primary_state() -> None:
    async def main() -> None:
        retail, bank = DirectSession(DomainServer(RETAIL).runtime), DirectSession(DomainServer(BANK).runtime)
        session = CompositeSession(retail, [bank], ["get_order", "get_balance", "deposit"])
        assert [t.name for t in await session.list_tools()] == ["get_order", "get_balance", "deposit"]
        before = await session.state_hash()
        assert not (await session.call_tool("get_order", {"order_id": "o0001"})).is_error
        r = await session.call_tool("deposit", {"account_id": "acc000", "amount": 5})
        assert not r.is_error or "frozen" in r.content
        assert await session.state_hash() == before == await retail.state_hash()  # the bank is scratch
        hidden = await session.call_tool("refund_order", {"order_id": "o0001"})  # not offered
        assert hidden.is_error and "unknown tool" in hidden.content
        assert (await session.snapshot()) == (await retail.snapshot())
    asyncio.run(main())


def test_oracle_episode_with_a_sampled_subset() -> None:
    async def main() -> None:
        for seed in range(4):
            task = TaskGenerator(RETAIL).generate(seed, 4)
            primary = DirectSession(DomainServer(RETAIL, seed=task.seed).runtime)
            sub = await open_tool_subset(task, primary, {"extra_domains": ["bank_accounts", "helpdesk_tickets"],
                                                         "extra_tools": 5, "seed": 1}, f"ep{seed}")
            names = [t.name for t in await sub.session.list_tools()]
            assert set(needed_tools(task)) <= set(names) and len(names) == len(needed_tools(task)) + 5
            assert sub.task.system_prompt != task.system_prompt and "You are" in sub.task.system_prompt
            traj = await run_episode(sub.task, OracleAgent(), ScriptedUser(), sub.session, episode_id=f"ep{seed}")
            await sub.close()
            assert traj.outcome.success, traj.outcome
            assert traj.messages[0].content == sub.task.system_prompt
    asyncio.run(main())
