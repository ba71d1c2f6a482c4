"""Answers that cannot be hedged (issue 13, item 3), on the inline tier of every built-in domain.

Adversaries do every action right and cheat on the words (tests/adversarial/answer_moves.py):
every candidate at once, corrections, tag floods, everything seen dumped in prose or in one
tag, negation, "no idea". Each task holds a question, so a success would be false: there must
be none, and every episode must be the agent's failure (judged, not infra). About 1,000
episodes over the five domains (per domain: 9 moves x ~10 tasks x 2 user modes). Control: the
oracle, in its tagged and three natural free-text phrasings, scores 100% on the same domains.
"""

from __future__ import annotations

import pytest

from tests.adversarial.answer_moves import MOVES, AnswerAdversary, has_question
from tests.adversarial.moves_play import assert_all_agent_failures, play_all
from toolzoo.agents.scripted import NATURAL_PHRASINGS, PHRASINGS, OracleAgent
from toolzoo.envs.taskgen import GeneratorOptions, TaskGenerator
from toolzoo.tools.zoo import builtin_names, get_domain

DOMAINS = builtin_names()
MODES = ("per_turn", "all_at_once")


def question_tasks(name: str, seeds: range, lengths: tuple[int, ...]) -> list:
    gen = TaskGenerator(get_domain(name))
    tasks = [gen.generate(seed, length) for seed in seeds for length in lengths]
    return [t for t in tasks if has_question(t)]


@pytest.mark.parametrize("name", DOMAINS)
def test_answer_moves_never_succeed(name):
    seeds = range(4) if name == "code_workspace" else range(8)  # code tools spawn processes: fewer
    tasks = question_tasks(name, seeds, (1, 2, 3))
    jobs = [(task, lambda m=move: AnswerAdversary(m), mode) for task in tasks for move in MOVES for mode in MODES]
    results = play_all(jobs)
    assert_all_agent_failures(results)
    print(f"{name}: {len(results)} adversarial episodes, 0 false successes")
    assert len(results) >= (120 if name == "code_workspace" else 250)
    # the control: with its tagged answers, the same agent's actions succeed on the same tasks
    controls = play_all([(task, OracleAgent, "per_turn") for task in tasks[:3]])
    assert all(t.outcome.success for _, t in controls), [t.outcome.reason for _, t in controls]


def test_natural_phrasings_are_three():
    assert len(NATURAL_PHRASINGS) == 3 and set(NATURAL_PHRASINGS) < set(PHRASINGS)


@pytest.mark.parametrize("name", DOMAINS)
def test_oracle_scores_100_percent_in_every_phrasing(name):
    lengths = (1, 3) if name == "code_workspace" else (1, 4, 8)
    tasks = []
    for chain in (False, True):
        gen = TaskGenerator(get_domain(name), GeneratorOptions(chain=chain))
        tasks += [gen.generate(seed, length) for seed in range(2) for length in lengths]
    jobs = [(task, lambda p=phrasing: OracleAgent(p), mode)
            for task in tasks for phrasing in PHRASINGS for mode in MODES]
    results = play_all(jobs)
    failed = [(label, t.outcome.reason) for label, t in results if not t.outcome.success]
    assert not failed, failed[:5]
    assert any(has_question(t) for t in tasks)  # the phrasings were exercised
