"""noisy_oracle with p: success at length L matches (1-p)^L within a binomial interval, and
the judged first failure is exactly the subtask the agent chose to fail."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from toolzoo.agents.scripted import NoisyOracleAgent
from toolzoo.envs.taskgen import TaskGenerator
from toolzoo.tools.zoo import get_domain

from tests.envs.helpers import EFFECT_DOMAINS, play


@pytest.mark.parametrize("p,length", [(0.1, 1), (0.1, 4), (0.2, 8), (0.3, 2)])
def test_success_matches_geometric(p, length):
    n, successes = 240, 0
    for i in range(n):
        domain = EFFECT_DOMAINS[i % len(EFFECT_DOMAINS)]
        task = TaskGenerator(get_domain(domain)).generate(1000 + i, length)
        agent = NoisyOracleAgent(p, seed=f"calib:{i}")
        traj = play(task, agent)
        successes += traj.outcome.success
        assert traj.outcome.first_failed == (agent.failed[0] if agent.failed else None)
    expected = (1 - p) ** length
    ci = binomtest(successes, n).proportion_ci(confidence_level=0.999)
    assert ci.low <= expected <= ci.high, (successes / n, expected)
