"""TrajectoryFeed: bounded staleness, conservation of trajectories, FIFO order (no Ray)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.cluster.learner import TrajectoryFeed, job_stream
from toolzoo.core import Task, Trajectory

from .conftest import make_config


def traj(i: int, version: int) -> Trajectory:
    task = Task(id=f"t{i}", domain="d", seed=0, length=1, subtasks=[])
    return Trajectory(episode_id=f"e{i}", task=task, meta={"policy_version": version})


# A schedule: each event either produces a trajectory at some lag behind the learner, or
# asks for a batch of n (and, if it gets one, the learner advances a version).
events = st.lists(st.one_of(st.tuples(st.just("put"), st.integers(0, 4)),
                            st.tuples(st.just("take"), st.integers(1, 5))), max_size=60)


@settings(max_examples=200, deadline=None)
@given(events=events, bound=st.integers(0, 3), capacity=st.integers(1, 20))
def test_consumed_within_bound_and_nothing_vanishes(events, bound, capacity):
    feed = TrajectoryFeed(bound, capacity=capacity)
    version, n_put, seen, order = 0, 0, [], []
    for kind, x in events:
        if kind == "put":
            feed.put(traj(n_put, max(0, version - x)))
            order.append(f"e{n_put}")
            n_put += 1
        else:
            batch = feed.take(x, version)
            if batch is None:
                continue
            assert len(batch) == x
            for t in batch:
                assert version - t.meta["policy_version"] <= bound
            seen += [t.episode_id for t in batch]
            version += 1
    s = feed.stats
    assert s.received == n_put
    assert s.received == s.consumed + s.dropped_stale + s.dropped_overflow + len(feed)
    assert s.consumed == len(seen) == sum(s.lags.values())
    assert len(set(seen)) == len(seen)
    # FIFO: what the learner got is in production order.
    assert seen == [e for e in order if e in set(seen)]
    assert s.max_lag <= bound


def test_take_waits_for_a_full_fresh_batch():
    feed = TrajectoryFeed(max_off_policy_steps=1)
    feed.put(traj(0, 0))
    feed.put(traj(1, 1))
    feed.put(traj(2, 2))
    assert feed.take(3, learner_version=2) is None  # version 0 is 2 behind: dropped, 2 fresh left
    assert feed.stats.dropped_stale == 1
    feed.put(traj(3, 2))
    batch = feed.take(3, learner_version=2)
    assert [t.episode_id for t in batch] == ["e1", "e2", "e3"]
    assert feed.stats.lags == {1: 1, 0: 2}


def test_future_versions_are_a_bug():
    feed = TrajectoryFeed(max_off_policy_steps=0)
    feed.put(traj(0, 5))
    with pytest.raises(ValueError):
        feed.take(1, learner_version=4)


def test_job_stream_gives_fresh_trials(tmp_path):
    config = make_config(str(tmp_path), tasks_per_length=2, lengths=[1])
    jobs = [j for _, j in zip(range(6), job_stream(config))]
    assert len({(j.task_seed, j.trial) for j in jobs}) == 6
    assert {j.task_seed for j in jobs} == {0, 1}
