"""toolzoo against skyrl-gym on one workload, side by side in one process.

The workload: 5 tools over customers and orders (12 customers, 30 orders, seeded per
episode), tasks of length 4 with 7 tool calls, a scripted agent that makes the reference
calls and then says the answers.

* toolzoo: a domain (below) with CEL effects and JSON Schema argument validation on, driven by
  the real episode loop ``toolzoo.envs.episode.run_episode`` with the ``OracleAgent`` and the
  ``ScriptedUser`` over a ``DirectSession`` (the in-process ``transport: direct`` session,
  the lowest-level public path that still runs the whole loop: messages, checkpoints,
  verifiable judging). Tasks come from ``TaskGenerator`` (generated once, reused).
* skyrl-gym 0.4: a ``BaseTextEnv`` with one ``ToolGroup`` of the same 5 tools written in plain
  Python over dicts, stepped with the same calls as ``<tool>{json}</tool>`` actions and the
  same answers; it checks the answers and the touched records at the end, as toolzoo's judge.

Rows: tool calls/s (the call mix of ``bench/tool_call.py``), episodes/s, and memory per open
episode with ``--open`` episodes open at once (each mid-episode, after its first tool call;
toolzoo's agent replays its moves, as skyrl-gym's does, so neither side counts an agent's plan).
skyrl-gym's agent moves are strings made before its clock starts (``skyrl_script``), so the
headline episodes/s row gives toolzoo the same: ``Replay`` hands out the oracle's messages from
one untimed episode per task, and both sides time the environment alone. A second row times
toolzoo with the ``OracleAgent`` deciding each move inside the episode (agent cost included).
The last line is ``ratio: X`` = toolzoo episodes/s / skyrl-gym episodes/s (the headline row).

    python bench/vs_skyrl.py [--episodes 400] [--calls 4000] [--open 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import time
from typing import Any

import psutil
from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput
from skyrl_gym.tools.core import ToolGroup, tool

from toolzoo.agents.scripted import OracleAgent
from toolzoo.core import Message
from toolzoo.envs.episode import run_episode
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.envs.taskgen import TaskGenerator
from toolzoo.tools.loader import load_domain_text
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.session import DirectSession
from toolzoo.tools.state import seed_state

DOMAIN = """
domain: shop5
description: Five tools over customers and orders (bench/vs_skyrl.py).
state:
  customers:
    key: id
    schema:
      type: object
      required: [id, name, tier, credit]
      properties:
        id: {type: string}
        name: {type: string}
        tier: {enum: [basic, gold]}
        credit: {type: integer, minimum: 0}
  orders:
    key: id
    schema:
      type: object
      required: [id, customer, status, total]
      properties:
        id: {type: string}
        customer: {type: string}
        status: {enum: [placed, shipped, delivered, refunded, cancelled]}
        total: {type: integer, minimum: 0}
seed:
  customers:
    count: 12
    fields:
      id: {pattern: "c{i:03d}"}
      name: {choice: [Ada, Ben, Cleo, Dan, Eve, Finn, Gia, Hal]}
      tier: {choice: [basic, gold]}
      credit: {int: [0, 50]}
  orders:
    count: 30
    fields:
      id: {pattern: "o{i:04d}"}
      customer: {ref: customers}
      status: {choice: [placed, shipped, delivered]}
      total: {int: [5, 500]}
tools:
  - name: get_order
    description: Look up one order by id.
    parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id], additionalProperties: false}
    effects:
      - require: "args.order_id in state.orders"
        error: "no order {args.order_id}"
      - return: "state.orders[args.order_id]"
  - name: get_customer
    description: Look up one customer by id.
    parameters: {type: object, properties: {customer_id: {type: string}}, required: [customer_id], additionalProperties: false}
    effects:
      - require: "args.customer_id in state.customers"
        error: "no customer {args.customer_id}"
      - return: "state.customers[args.customer_id]"
  - name: list_orders
    description: List the ids of a customer's orders, sorted.
    parameters: {type: object, properties: {customer_id: {type: string}}, required: [customer_id], additionalProperties: false}
    effects:
      - require: "args.customer_id in state.customers"
        error: "no customer {args.customer_id}"
      - return: "sorted(state.orders.filter(k, state.orders[k].customer == args.customer_id))"
  - name: refund_order
    description: Refund a delivered order; its total is added to the customer's store credit.
    parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id], additionalProperties: false}
    effects:
      - require: "args.order_id in state.orders"
        error: "no order {args.order_id}"
      - require: "state.orders[args.order_id].status == 'delivered'"
        error: "order {args.order_id} is not delivered (status: {state.orders[args.order_id].status})"
      - set: {collection: customers, key: "state.orders[args.order_id].customer", field: credit,
              value: "state.customers[state.orders[args.order_id].customer].credit + state.orders[args.order_id].total"}
      - set: {collection: orders, key: "args.order_id", field: status, value: "'refunded'"}
      - return: "{'order_id': args.order_id, 'status': 'refunded'}"
  - name: ship_order
    description: Mark a placed order as shipped.
    parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id], additionalProperties: false}
    effects:
      - require: "args.order_id in state.orders"
        error: "no order {args.order_id}"
      - require: "state.orders[args.order_id].status == 'placed'"
        error: "order {args.order_id} is not placed (status: {state.orders[args.order_id].status})"
      - set: {collection: orders, key: "args.order_id", field: status, value: "'shipped'"}
      - return: "{'order_id': args.order_id, 'status': 'shipped'}"
subtasks:
  - id: status_of
    bind: {o: "pick(state.orders.filter(k, true))"}
    ask: "What is the status of order {o}?"
    solution: [{tool: get_order, args: {order_id: "o"}}]
    answer: "state.orders[o].status"
  - id: credit_after_refund
    bind:
      o: "pick(state.orders.filter(k, state.orders[k].status == 'delivered'))"
      c: "state.orders[o].customer"
    ask: "Refund order {o} and tell me the store credit of its customer afterwards."
    solution:
      - {tool: refund_order, args: {order_id: "o"}}
      - {tool: get_customer, args: {customer_id: "c"}}
    answer: "state.customers[c].credit"
  - id: ship_then_status
    bind: {o: "pick(state.orders.filter(k, state.orders[k].status == 'placed'))"}
    ask: "Ship order {o} and tell me its status afterwards."
    solution:
      - {tool: ship_order, args: {order_id: "o"}}
      - {tool: get_order, args: {order_id: "o"}}
    answer: "state.orders[o].status"
  - id: count_orders
    bind: {c: "pick(state.customers.filter(k, true))"}
    ask: "How many orders does customer {c} have?"
    solution: [{tool: list_orders, args: {customer_id: "c"}}, {tool: get_customer, args: {customer_id: "c"}}]
    answer: "size(state.orders.filter(k, state.orders[k].customer == c))"
"""

LENGTH, CALLS_PER_EPISODE = 4, 7


# -- skyrl-gym: the same tools in plain Python --------------------------------------------------
class ShopTools(ToolGroup):
    def __init__(self, state: dict[str, dict[str, dict[str, Any]]]):
        self.state = state
        super().__init__(name="shop")

    @tool
    def get_order(self, order_id: str) -> Any:
        if order_id not in self.state["orders"]:
            raise ValueError(f"no order {order_id}")
        return self.state["orders"][order_id]

    @tool
    def get_customer(self, customer_id: str) -> Any:
        if customer_id not in self.state["customers"]:
            raise ValueError(f"no customer {customer_id}")
        return self.state["customers"][customer_id]

    @tool
    def list_orders(self, customer_id: str) -> Any:
        if customer_id not in self.state["customers"]:
            raise ValueError(f"no customer {customer_id}")
        return sorted(k for k, o in self.state["orders"].items() if o["customer"] == customer_id)

    @tool
    def refund_order(self, order_id: str) -> Any:
        order = self.get_order(order_id)
        if order["status"] != "delivered":
            raise ValueError(f"order {order_id} is not delivered (status: {order['status']})")
        customer = self.state["customers"][order["customer"]]
        self.state["customers"][order["customer"]] = {**customer, "credit": customer["credit"] + order["total"]}
        self.state["orders"][order_id] = {**order, "status": "refunded"}
        return {"order_id": order_id, "status": "refunded"}

    @tool
    def ship_order(self, order_id: str) -> Any:
        order = self.get_order(order_id)
        if order["status"] != "placed":
            raise ValueError(f"order {order_id} is not placed (status: {order['status']})")
        self.state["orders"][order_id] = {**order, "status": "shipped"}
        return {"order_id": order_id, "status": "shipped"}


_TOOL = re.compile(r"<tool>(.*?)</tool>", re.S)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)


class ShopEnv(BaseTextEnv):
    """One task: the user's requests in order; tool calls as ``<tool>{json}</tool>``; the
    reward checks the answers and the records the reference solution touched."""

    def __init__(self, extras: dict[str, Any]):
        super().__init__()
        seeded = extras["seeded"]
        self.state = {c: dict(recs) for c, recs in seeded.items()}  # records replaced, never changed: shared
        self.tools = ShopTools(self.state)
        self.init_tool_groups([self.tools])
        self.asks, self.answers, self.expected = extras["asks"], extras["answers"], extras["expected"]
        self.max_turns = 64
        self.asked = 0
        self.said: list[str] = []
        self.chat_history: list[dict[str, str]] = []

    def init(self, prompt):
        self.asked = 1
        return [{"role": "user", "content": self.asks[0]}], {}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        self.turns += 1
        self.chat_history.append({"role": "assistant", "content": action})
        call = _TOOL.search(action)
        if call:
            try:
                spec = json.loads(call.group(1))
                result = self._execute_tool("shop", spec["name"], list(spec["arguments"].values()))
                obs = json.dumps(result, sort_keys=True)
            except Exception as exc:
                obs = f"error: {exc}"
            msg = {"role": "user", "content": obs}
            self.chat_history.append(msg)
            return BaseTextEnvStepOutput(observations=[msg], reward=0.0, done=False, metadata={})
        self.said += _ANSWER.findall(action)
        if self.asked < len(self.asks) and self.turns < self.max_turns:
            msg = {"role": "user", "content": self.asks[self.asked]}
            self.asked += 1
            self.chat_history.append(msg)
            return BaseTextEnvStepOutput(observations=[msg], reward=0.0, done=False, metadata={})
        ok = self.said == self.answers and all(
            self.state[c].get(k) == rec for c, recs in self.expected.items() for k, rec in recs.items())
        return BaseTextEnvStepOutput(observations=[], reward=1.0 if ok else 0.0, done=True, metadata={})


def skyrl_script(task) -> tuple[dict[str, Any], list[list[str]]]:
    """The env's extras and, per subtask, the agent's actions (the same calls and answers)."""
    answers = [json.dumps(s.answer) if not isinstance(s.answer, str) else s.answer for s in task.subtasks]
    extras = {"asks": [s.ask for s in task.subtasks], "answers": answers, "expected": task.expected_final}
    actions = [[f"<tool>{json.dumps({'name': st.tool, 'arguments': st.args})}</tool>" for st in s.solution]
               + [f"<answer>{a}</answer>"] for s, a in zip(task.subtasks, answers)]
    return extras, actions


def skyrl_episode(extras: dict[str, Any], actions: list[list[str]]) -> float:
    env = ShopEnv(extras)
    env.init([])
    out = None
    for turn in actions:
        for action in turn:
            out = env.step(action)
    env.close()
    return out["reward"]


# -- toolzoo -------------------------------------------------------------------------------------
class Replay:
    """A scripted agent whose moves were decided before the clock starts, as skyrl-gym's
    actions are (``skyrl_script``): the same assistant messages the oracle sends, handed out
    in order. The messages are only read by the episode, so one list serves every round."""

    def __init__(self, moves: list[Message]):
        self.moves, self.i = moves, 0

    async def start(self, task) -> None:
        self.i = 0

    async def act(self, messages, tools) -> Message:
        move = self.moves[self.i]
        self.i += 1
        return move


def oracle_moves(domain, tasks) -> dict[str, list[Message]]:
    """Per task, the oracle's assistant messages from one untimed episode."""
    async def run() -> dict[str, list[Message]]:
        return {t.id: [m for m in (await toolzoo_episode(domain, t)).messages if m.role == "assistant"]
                for t in tasks}

    return asyncio.run(run())


async def toolzoo_episode(domain, task, agent=None) -> Any:
    session = DirectSession(DomainRuntime(domain, seed_state(domain.spec, task.seed)))
    return await run_episode(task, agent or OracleAgent(), ScriptedUser(), session, episode_id=task.id)


def make_tasks(domain, n: int) -> list:
    gen = TaskGenerator(domain)
    tasks, seed = [], 0
    while len(tasks) < n:
        task = gen.generate(seed, LENGTH)
        seed += 1
        if sum(len(s.solution) for s in task.subtasks) == CALLS_PER_EPISODE:
            tasks.append(task)
    return tasks


def call_mix(domain, n: int) -> list[tuple[str, dict]]:
    """bench/tool_call.py's mix: two lookups, a listing and a write (half fail a require)."""
    orders = sorted(seed_state(domain.spec, 0).data["orders"])
    return [("get_order", {"order_id": orders[i % len(orders)]}) if i % 4 in (0, 1) else
            ("list_orders", {"customer_id": f"c{i % 12:03d}"}) if i % 4 == 2 else
            ("ship_order", {"order_id": orders[i % len(orders)]}) for i in range(n)]


def calls_per_s(domain, mix) -> tuple[float, float]:
    session = DirectSession(DomainRuntime(domain, seed_state(domain.spec, 0)))

    async def tz() -> float:
        t0 = time.perf_counter()
        for name, args in mix:
            await session.call_tool(name, args)
        return len(mix) / (time.perf_counter() - t0)

    seeded = seed_state(domain.spec, 0).to_json()
    env = ShopEnv({"seeded": seeded, "asks": ["x"], "answers": [], "expected": {}})
    actions = [f"<tool>{json.dumps({'name': n, 'arguments': a})}</tool>" for n, a in mix]
    t0 = time.perf_counter()
    for action in actions:
        env.step(action)
    sky = len(mix) / (time.perf_counter() - t0)
    return asyncio.run(tz()), sky


def episodes_per_s(domain, tasks, scripts, moves) -> tuple[float, float, float]:
    """(toolzoo with the moves decided beforehand, skyrl-gym, toolzoo with the oracle deciding
    each move inside the episode) episodes/s."""
    async def tz(replay: bool) -> float:
        t0 = time.perf_counter()
        for task in tasks:
            traj = await toolzoo_episode(domain, task, Replay(moves[task.id]) if replay else None)
            assert traj.outcome.success, traj.outcome
        return len(tasks) / (time.perf_counter() - t0)

    tz_rate = asyncio.run(tz(True))
    t0 = time.perf_counter()
    for extras, actions in scripts:
        assert skyrl_episode(extras, actions) == 1.0
    sky_rate = len(scripts) / (time.perf_counter() - t0)
    return tz_rate, sky_rate, asyncio.run(tz(False))


class Parked(Replay):
    """The replayed moves, paused after the first tool call until released: keeps episodes
    open. Replayed, as skyrl-gym's side is (its actions are strings made beforehand and shared
    between environments), so both sides hold environment state alone, not an agent's plan."""

    def __init__(self, moves: list[Message], release: asyncio.Event, parked: list):
        super().__init__(moves)
        self.release, self.parked = release, parked

    async def act(self, messages, tools):
        if self.i == 1:
            self.parked.append(1)
            await self.release.wait()
        return await super().act(messages, tools)


def rss() -> int:
    gc.collect()
    return psutil.Process(os.getpid()).memory_info().rss


def toolzoo_open_memory(domain, tasks, moves, n: int) -> float:
    async def run() -> float:
        base = rss()
        release, parked = asyncio.Event(), []
        runs = [asyncio.create_task(toolzoo_episode(domain, tasks[i % len(tasks)],
                                                    Parked(moves[tasks[i % len(tasks)].id], release, parked)))
                for i in range(n)]
        while len(parked) < n:
            await asyncio.sleep(0.05)
        held = rss() - base
        release.set()
        await asyncio.gather(*runs)
        return held / n

    return asyncio.run(run())


def skyrl_open_memory(scripts, n: int) -> float:
    base = rss()
    envs = []
    for i in range(n):
        extras, actions = scripts[i % len(scripts)]
        env = ShopEnv(extras)
        env.init([])
        env.step(actions[0][0])  # mid-episode: after the first tool call
        envs.append(env)
    held = rss() - base
    del envs
    return held / n


def profile_episodes(domain, tasks, top: int = 30) -> None:
    """Where a toolzoo episode's time goes: cProfile over the episodes, each function's
    cumulative time scaled to the unprofiled episode time, in us per episode and per turn."""
    import cProfile
    import pstats

    async def run() -> list:
        return [await toolzoo_episode(domain, t) for t in tasks]

    t0 = time.perf_counter()
    trajs = asyncio.run(run())
    plain = time.perf_counter() - t0
    turns = sum(len(t.messages) for t in trajs) / len(trajs)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    asyncio.run(run())
    prof.disable()
    scale = plain / (time.perf_counter() - t0)  # profiler overhead removed, roughly
    stats = pstats.Stats(prof).stats
    rows = sorted(((ct, nc, f) for f, (cc, nc, tt, ct, callers) in stats.items()), reverse=True)
    n = len(tasks)
    print(f"profile: {plain / n * 1e6:.0f} us per episode unprofiled, {turns:.0f} messages per episode; "
          f"cumulative us per episode (x{scale:.2f} for profiler overhead):")
    for ct, nc, (file, line, fn) in rows[:top]:
        if "toolzoo" in file or "vs_skyrl" in file:
            short = file.split("/toolzoo/")[-1] if "/toolzoo/" in file else os.path.basename(file)
            print(f"  {ct * scale / n * 1e6:9.0f} us  {nc / n:6.1f} calls  {short}:{line} {fn}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--open", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also print where a toolzoo episode's time goes")
    args = parser.parse_args()
    domain = load_domain_text(DOMAIN, "<bench/vs_skyrl.py shop5>")
    tasks = make_tasks(domain, args.episodes)
    seeded = {seed: seed_state(domain.spec, seed).to_json() for seed in {t.seed for t in tasks}}
    scripts = []
    for task in tasks:
        extras, actions = skyrl_script(task)
        scripts.append(({**extras, "seeded": seeded[task.seed]}, actions))
    if args.profile:
        profile_episodes(domain, tasks[:200], top=60)
    mix = call_mix(domain, args.calls)
    moves = oracle_moves(domain, tasks)
    calls, eps = [], []
    for _ in range(args.rounds):  # alternating, so machine noise hits both alike
        calls.append(calls_per_s(domain, mix))
        eps.append(episodes_per_s(domain, tasks, scripts, moves))
    tz_calls, sky_calls = (statistics.median(x[i] for x in calls) for i in (0, 1))
    tz_eps, sky_eps, tz_oracle = (statistics.median(x[i] for x in eps) for i in (0, 1, 2))
    print(f"tool calls/s   toolzoo {tz_calls:9.0f}   skyrl-gym {sky_calls:9.0f}   ratio {tz_calls / sky_calls:.3f}")
    print(f"episodes/s     toolzoo {tz_eps:9.0f}   skyrl-gym {sky_eps:9.0f}   ratio {tz_eps / sky_eps:.3f} "
          f"(L={LENGTH}, {CALLS_PER_EPISODE} calls each; both agents' moves decided beforehand)")
    print(f"episodes/s     toolzoo with the oracle deciding each move in the episode {tz_oracle:9.0f}"
          f"   ratio {tz_oracle / sky_eps:.3f}")
    if args.open:
        sky_mem = skyrl_open_memory(scripts, args.open)
        tz_mem = toolzoo_open_memory(domain, tasks, moves, args.open)
        print(f"memory/open episode at {args.open:,}: toolzoo {tz_mem / 1024:.1f} KiB   skyrl-gym {sky_mem / 1024:.1f} KiB"
              f"   difference {(tz_mem - sky_mem) / 1024:+.1f} KiB (goal: <= +10 KiB)")
    print(f"ratio: {tz_eps / sky_eps:.3f}")


if __name__ == "__main__":
    main()
