"""``toolzoo/ToolUse-v0``: a gymnasium Env over one domain's tasks.

Observation and action are text. ``reset(seed)`` picks a task (deterministic in the seed) and
returns the system prompt, the tool list and the user's first message. ``step(action)``
accepts an OpenAI-style JSON tool call (``{"name": ..., "arguments": {...}}``, the
``{"type": "function", "function": {...}}`` form, or a list of them), a Hermes-style
``<tool_call>...</tool_call>`` block, or plain text (a reply to the user). Tool calls return
their results as the next observation; a plain reply gets the user's next message, or ends
the episode with the verifiable judge's reward.

The env drives the one episode machinery: its sandbox comes from
:func:`toolzoo.envs.driver.open_episode` (held from ``reset`` to the next ``reset`` or
``close``), each action is an :class:`~toolzoo.envs.episode.EpisodeSteps` step (the same
tool-call validation, call records, checkpoints and infra attribution as ``toolzoo run``),
and the reward is the :class:`~toolzoo.envs.scorer.Scorer`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from toolzoo.agents.hermes import parse_reply
from toolzoo.clock import EpisodeClock, use_clock
from toolzoo.core import FunctionCall, Message, ToolCall, Trajectory
from toolzoo.envs.driver import open_episode
from toolzoo.envs.episode import EpisodeEnded, EpisodeSteps, Limits
from toolzoo.envs.scorer import VERIFIABLE
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.envs.taskgen import GeneratorOptions, TaskGenerator
from toolzoo.sandbox.base import SandboxSpec
from toolzoo.tools.zoo import get_domain

CHARSET = string.printable
MAX_TEXT = 200_000


def _printable(text: str) -> str:
    return "".join(ch if ch in CHARSET else "?" for ch in text)[:MAX_TEXT]


def parse_action(action: str) -> tuple[str | None, list[ToolCall]]:
    """(reply text, tool calls) from an action string in any of the accepted forms."""
    text = action.strip()
    if text.startswith(("{", "[")):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        items = obj if isinstance(obj, list) else [obj] if isinstance(obj, dict) else []
        calls = []
        for i, item in enumerate(items):
            fn = item.get("function", item) if isinstance(item, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                calls = []
                break
            args = fn.get("arguments", {})
            raw = args if isinstance(args, str) else json.dumps(args)
            calls.append(ToolCall(id=f"call_{i}", function=FunctionCall(name=fn["name"], arguments=raw)))
        if calls:
            return None, calls
    parsed = parse_reply(action)
    return parsed.content, parsed.tool_calls


class ToolUseEnv(gym.Env):
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, domain: str = "retail_orders", length: int = 1, *, user_mode: str = "per_turn",
                 chain: bool = False, max_steps: int = 64, render_mode: str | None = None):
        self.domain = get_domain(domain)
        self.domain_ref = domain
        self.length = length
        self.user_mode = user_mode
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.generator = TaskGenerator(self.domain, GeneratorOptions(chain=chain))
        self.observation_space = spaces.Text(max_length=MAX_TEXT, charset=CHARSET)
        self.action_space = spaces.Text(max_length=MAX_TEXT, charset=CHARSET)
        self._loop = asyncio.new_event_loop()
        self._episode: contextlib.AsyncExitStack | None = None  # the open_episode being held
        self.steps: EpisodeSteps | None = None
        self.trajectory: Trajectory | None = None

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        task_seed = int(self.np_random.integers(0, 2**31 - 1)) if seed is None else seed
        length = int((options or {}).get("length", self.length))
        task = self.generator.generate(task_seed, length)
        return self._run(self._reset(task)), {"task_id": task.id, "length": length}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return self._run(self._step(action))

    def render(self) -> str | None:
        if self.trajectory is None:
            return None
        return "\n".join(f"{m.role}: {m.content or ''}{' ' + str([c.function.model_dump() for c in m.tool_calls]) if m.tool_calls else ''}"
                         for m in self.trajectory.messages)

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._close_episode())
            self._loop.close()

    # -- internals ------------------------------------------------------------------------------
    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    async def _close_episode(self) -> None:
        if self._episode is not None:
            stack, self._episode = self._episode, None
            await stack.aclose()

    async def _reset(self, task: Any) -> str:
        await self._close_episode()
        stack = contextlib.AsyncExitStack()
        self.clock = EpisodeClock()
        spec = SandboxSpec(domain=self.domain_ref, seed=task.seed, run_id="gym", episode_id=f"gym-{task.id}")
        ep = await stack.enter_async_context(open_episode(task, spec, clock=self.clock))
        self._episode = stack
        self.trajectory = Trajectory(episode_id=f"gym-{task.id}", task=task)
        # One step per action: the env's own step budget is the turn limit.
        self.steps = EpisodeSteps(ep.task, ScriptedUser(mode=self.user_mode), ep.session, self.trajectory,
                                  Limits(max_turns=self.max_steps, max_tool_calls=10**9))
        with use_clock(self.clock):
            await self.steps.start()
            reply = await self.steps.user_turn()
        self.tools = self.steps.tools
        system = self.trajectory.messages[0]
        tools = json.dumps([t.to_openai() for t in self.tools], ensure_ascii=True)
        return _printable(f"{system.content}\nTools: {tools}\nuser: {reply.content if reply else ''}")

    async def _step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        steps = self.steps
        if steps is None:
            raise RuntimeError("call reset() before step()")
        text, calls = parse_action(action)
        with use_clock(self.clock):
            try:
                ran = await steps.agent_turn(Message(role="assistant", content=text, tool_calls=calls or None))
                if calls and not steps.done:
                    obs = "\n".join(f"tool {call.name}: {result.content}" for call, result in ran)
                    if not steps.turn_allowed():
                        return _printable(obs), *(await self._finish()), False, True, {}
                    return _printable(obs), 0.0, False, False, {}
                if steps.done:  # a limit ended it
                    return "", *(await self._finish()), False, True, {}
                reply = await steps.user_turn()
                if steps.done:
                    reward, info = await self._finish()
                    return "", reward, True, False, info
                if not steps.turn_allowed():
                    reward, info = await self._finish()
                    return _printable(f"user: {reply.content if reply else ''}"), reward, False, True, info
                return _printable(f"user: {reply.content if reply else ''}"), 0.0, False, False, {}
            except EpisodeEnded as ended:  # infra / user_sim: no reward to give
                self.trajectory.outcome = ended.outcome
                return "", 0.0, True, False, {"success": False, "failure": str(ended.outcome.failure),
                                              "reason": ended.outcome.reason}

    async def _finish(self) -> tuple[float, dict[str, Any]]:
        traj = self.trajectory
        await self.steps.final_state()
        outcome = VERIFIABLE.verify(traj).outcome
        traj.timing = self.clock.timing()
        return outcome.reward, {"success": outcome.success, "subtasks_completed": outcome.subtasks_completed,
                                "first_failed": outcome.first_failed}
