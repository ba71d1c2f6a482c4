"""``toolzoo/ToolUse-v0``: registered on import, passes gymnasium's checker, accepts OpenAI
JSON, Hermes blocks and plain text, and pays the verifiable reward at termination."""

from __future__ import annotations

import json

import gymnasium
from gymnasium.utils.env_checker import check_env

import toolzoo  # noqa: F401  (registers the env)


def _solve(env, action_for):
    obs, info = env.reset(seed=4)
    task = env.unwrapped.trajectory.task
    assert task.subtasks[0].ask in obs and task.subtasks[0].solution[0].tool in obs
    reward, terminated = 0.0, False
    for sub in task.subtasks:
        for step in sub.solution:
            obs, reward, terminated, truncated, _ = env.step(action_for(step))
            assert obs.startswith("tool ") and "error" not in obs.lower()
        obs, reward, terminated, truncated, info = env.step(f"Done. The answer is {sub.answer}.")
    return reward, terminated, info


def test_env_checker_passes():
    env = gymnasium.make("toolzoo/ToolUse-v0", domain="retail_orders", length=2)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_openai_json_actions_solve_the_task():
    env = gymnasium.make("toolzoo/ToolUse-v0", domain="bank_accounts", length=3)
    reward, terminated, info = _solve(env, lambda s: json.dumps({"type": "function", "function": {"name": s.tool, "arguments": json.dumps(s.args)}}))
    assert terminated and reward == 1.0 and info["success"]
    env.close()


def test_hermes_actions_solve_the_task_and_plain_text_is_a_reply():
    env = gymnasium.make("toolzoo/ToolUse-v0", domain="retail_orders", length=2)
    reward, terminated, _ = _solve(env, lambda s: f'<tool_call>{{"name": "{s.tool}", "arguments": {json.dumps(s.args)}}}</tool_call>')
    assert terminated and reward == 1.0
    obs, _ = env.reset(seed=4)
    obs, reward, terminated, truncated, info = env.step("I have no idea.")
    assert not terminated and obs.startswith("user:")  # the user states the next subtask
    obs, reward, terminated, truncated, info = env.step("Still no idea.")
    assert terminated and reward == 0.0 and info["first_failed"] == 0
    env.close()


def test_bad_tool_call_is_an_observation_not_a_crash():
    env = gymnasium.make("toolzoo/ToolUse-v0", domain="retail_orders", length=1)
    env.reset(seed=0)
    obs, reward, terminated, truncated, _ = env.step('{"name": "get_order", "arguments": {"order_id": 7}}')
    assert "order_id" in obs and not terminated
    obs, *_ = env.step('<tool_call>{"name": "nope", "arguments": {}}</tool_call>')
    assert "unknown tool" in obs
    env.close()
