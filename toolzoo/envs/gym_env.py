"""``toolzoo/ToolUse-v0``: a gymnasium Env over one domain's tasks.

Observation and action are text. ``reset(seed)`` picks a task (deterministic in the seed) and
returns the system prompt, the tool list and the user's first message. ``step(action)``
accepts an OpenAI-style JSON tool call (``{"name": ..., "arguments": {...}}``, the
``{"type": "function", "function": {...}}`` form, or a list of them), a Hermes-style
``<tool_call>...</tool_call>`` block, or plain text (a reply to the user). Tool calls return
their results as the next observation; a plain reply gets the user's next message, or ends
the episode with the verifiable judge's reward.
"""

from __future__ import annotations

import asyncio
import json
import string
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from toolzoo.agents.hermes import parse_reply
from toolzoo.agents.toolcall_check import validate_tool_call
from toolzoo.core import FunctionCall, Message, ToolCall, Trajectory
from toolzoo.envs.episode import DEFAULT_SYSTEM, _checkpoint
from toolzoo.envs.scripted_user import ScriptedUser
from toolzoo.envs.taskgen import GeneratorOptions, TaskGenerator
from toolzoo.rubrics.verifiable import judge_verifiable
from toolzoo.sandbox.base import SandboxSpec, create_sandbox
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
        self._sandbox = None
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
        if self._sandbox is not None:
            self._run(self._sandbox.close())
            self._sandbox = None
        if not self._loop.is_closed():
            self._loop.close()

    # -- internals ------------------------------------------------------------------------------
    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    async def _reset(self, task: Any) -> str:
        if self._sandbox is not None:
            await self._sandbox.close()
        self._sandbox = await create_sandbox(SandboxSpec(domain=self.domain_ref, seed=task.seed))
        self.tools = await self._sandbox.session.list_tools()
        self.user = ScriptedUser(mode=self.user_mode)
        await self.user.start(task)
        self.trajectory = Trajectory(episode_id=f"gym-{task.id}", task=task)
        self.steps = 0
        system = Message(role="system", content=task.system_prompt or DEFAULT_SYSTEM.format(domain=task.domain))
        reply = await self.user.respond([system])
        self.trajectory.messages += [system, reply.message]
        tools = json.dumps([t.to_openai() for t in self.tools], ensure_ascii=True)
        return _printable(f"{system.content}\nTools: {tools}\nuser: {reply.message.content}")

    async def _step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        traj = self.trajectory
        if traj is None:
            raise RuntimeError("call reset() before step()")
        self.steps += 1
        text, calls = parse_action(action)
        traj.messages.append(Message(role="assistant", content=text, tool_calls=calls or None))
        if calls:
            lines = []
            for call in calls:
                error = validate_tool_call(call, self.tools)
                result = None if error else await self._sandbox.session.call_tool(call.name, call.parsed_args(), call.id)
                content = error or result.content
                traj.messages.append(Message(role="tool", tool_call_id=call.id, name=call.name, content=content))
                lines.append(f"tool {call.name}: {content}")
            truncated = self.steps >= self.max_steps
            if truncated:
                return _printable("\n".join(lines)), *(await self._finish()), False, True, {}
            return _printable("\n".join(lines)), 0.0, False, False, {}
        await _checkpoint(traj.task, self._sandbox.session, traj)
        reply = await self.user.respond(traj.messages)
        if reply.stop:
            reward, info = await self._finish()
            return "", reward, True, False, info
        traj.messages.append(reply.message)
        if self.steps >= self.max_steps:
            reward, info = await self._finish()
            return _printable(f"user: {reply.message.content}"), reward, False, True, info
        return _printable(f"user: {reply.message.content}"), 0.0, False, False, {}

    async def _finish(self) -> tuple[float, dict[str, Any]]:
        traj = self.trajectory
        final = await self._sandbox.session.snapshot()
        score, outcome = judge_verifiable(traj.task, traj.messages, final, traj.checkpoints)
        traj.outcome, traj.scores["verifiable"] = outcome, score
        return outcome.reward, {"success": outcome.success, "subtasks_completed": outcome.subtasks_completed,
                                "first_failed": outcome.first_failed}
