"""The adversarial moves served as an OpenAI-compatible endpoint on loopback
(tests/adversarial/endpoint_moves.py) driving the real ``openai`` agent over HTTP.

Answer moves: browse with the read tools, then hedge with every value seen, flood one tag per
candidate, or dump everything in one tag, on question-only tasks of the effect domains (so
only the answer decides). Code moves on code_workspace's fix_module: exit 0, an always-equal
object, a rewritten test file. No success, every failure the agent's."""

from __future__ import annotations

import pytest

from tests.adversarial.endpoint_moves import ANSWER_MOVES, CODE_MOVES, AdversaryEndpoint
from tests.adversarial.moves_play import assert_all_agent_failures, play_all
from tests.envs.helpers import EFFECT_DOMAINS
from toolzoo.agents.openai import OpenAIAgent
from toolzoo.envs.taskgen import GeneratorOptions, TaskGenerator
from toolzoo.llm import LLMConfig
from toolzoo.tools.zoo import get_domain


@pytest.fixture(scope="module")
def endpoint():
    with AdversaryEndpoint() as ep:
        yield ep


def agent_for(endpoint: AdversaryEndpoint, move: str) -> OpenAIAgent:
    config = LLMConfig(model=move, base_url=endpoint.base_url, api_key="sk-test", timeout_s=10.0, max_retries=0)
    agent = OpenAIAgent(config)
    agent.label = move
    return agent


def question_only_tasks(name: str, n: int) -> list:
    gen = TaskGenerator(get_domain(name))
    tasks = []
    for seed in range(60):
        for length in (1, 2):
            task = gen.generate(seed, length)
            if all(s.answer is not None and not s.touched for s in task.subtasks):
                tasks.append(task)
        if len(tasks) >= n:
            break
    return tasks[:n]


@pytest.mark.parametrize("name", EFFECT_DOMAINS)
def test_endpoint_answer_moves_never_succeed(endpoint, name):
    tasks = question_only_tasks(name, 6)
    assert tasks
    before = endpoint.requests
    jobs = [(task, lambda m=move: agent_for(endpoint, m), mode)
            for task in tasks for move in ANSWER_MOVES for mode in ("per_turn", "all_at_once")]
    results = play_all(jobs, concurrency=4)
    assert_all_agent_failures(results)
    assert endpoint.requests - before >= 2 * len(jobs)  # it browsed, then answered: real HTTP each time
    assert any(c.error is None for _, t in results for c in t.calls)  # and its lookups worked


def _fix_tasks(seeds: range) -> list:
    gen = TaskGenerator(get_domain("code_workspace"), GeneratorOptions(templates=["fix_module"]))
    return [gen.generate(seed, 1) for seed in seeds]


def _code_moves(endpoint: AdversaryEndpoint, backend: str, seeds: range) -> None:
    jobs = [(task, lambda m=move: agent_for(endpoint, m), "per_turn")
            for task in _fix_tasks(seeds) for move in CODE_MOVES]
    results = play_all(jobs, backend=backend, concurrency=2)
    assert_all_agent_failures(results)
    for _, traj in results:
        runs = [c for c in traj.calls if c.name == "run_tests"]
        assert runs and runs[-1].result["status"] == "failing"


def test_endpoint_code_moves_fail_inline(endpoint):
    _code_moves(endpoint, "inline", range(3))


@pytest.mark.slow
def test_endpoint_code_moves_fail_on_the_process_tier(endpoint):
    _code_moves(endpoint, "process", range(1))
