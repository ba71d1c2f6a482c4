"""Test verdicts agent code cannot short-circuit (issue 13, item 4): code_workspace's
fix_module goal against "fixes" that fix nothing (tests/adversarial/code_moves.py): os._exit(0),
sys.exit(0), raising SystemExit, exiting inside the call, objects whose __eq__ is always true
(and an int subclass), printing "passed", a lookup table of the canonical cases, forged runner
reports, a monkeypatched runner, and a rewritten test file. None may pass, each is the agent's
failure; the oracle on the same tasks passes (control). Fast on the inline tier (impl tools on
this host, allowed for tests); the same on the process tier (bubblewrap) is marked slow."""

from __future__ import annotations

import pytest

from tests.adversarial.code_moves import CHEATS, CodeCheater
from tests.adversarial.moves_play import assert_all_agent_failures, play_all
from toolzoo.agents.scripted import OracleAgent
from toolzoo.envs.taskgen import GeneratorOptions, TaskGenerator
from toolzoo.tools.zoo import get_domain


def fix_tasks(seeds: range) -> list:
    gen = TaskGenerator(get_domain("code_workspace"), GeneratorOptions(templates=["fix_module"]))
    return [gen.generate(seed, 1) for seed in seeds]


def _check(backend: str, seeds: range, concurrency: int) -> None:
    tasks = fix_tasks(seeds)
    jobs = [(task, lambda c=cheat: CodeCheater(c), "per_turn") for task in tasks for cheat in CHEATS]
    results = play_all(jobs, backend=backend, concurrency=concurrency)
    assert_all_agent_failures(results)
    assert len(results) == len(tasks) * len(CHEATS)
    for _, traj in results:  # the verdict came from run_tests, and says failing
        verdicts = [c for c in traj.calls if c.name == "run_tests"]
        assert verdicts and verdicts[-1].result["status"] == "failing", verdicts
    controls = play_all([(task, OracleAgent, "per_turn") for task in tasks], backend=backend, concurrency=concurrency)
    assert all(t.outcome.success for _, t in controls), [t.outcome.reason for _, t in controls]


def test_code_cheats_fail_inline():
    _check("inline", range(6), concurrency=4)


@pytest.mark.slow
def test_code_cheats_fail_on_the_process_tier():
    _check("process", range(2), concurrency=2)


@pytest.mark.slow
def test_code_cheats_fail_on_the_docker_tier():
    try:
        from toolzoo.sandbox.docker import docker_available, ensure_image

        ok, why = docker_available()
        if ok:
            ensure_image()
    except Exception as exc:  # no SDK, no daemon, image build failed
        ok, why = False, f"{type(exc).__name__}: {exc}"
    if not ok:
        pytest.skip(f"docker unavailable: {why}")
    _check("docker", range(1), concurrency=2)
