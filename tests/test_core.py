"""The data model round-trips losslessly through JSON."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.core import (CallRecord, Checkpoint, FunctionCall, Message, Outcome, Score, ItemScore, Step,
                          SubtaskInstance, Task, TokenInfo, ToolCall, ToolResult, Trajectory, Usage)

text = st.text(max_size=30)
json_scalar = st.none() | st.booleans() | st.integers(-1000, 1000) | text
tool_calls = st.lists(st.builds(ToolCall, id=text, function=st.builds(FunctionCall, name=text, arguments=text)), max_size=3)
messages = st.builds(Message, role=st.sampled_from(["system", "user", "assistant", "tool"]), content=st.none() | text,
                     tool_calls=st.none() | tool_calls, tool_call_id=st.none() | text, name=st.none() | text,
                     tokens=st.none() | st.builds(TokenInfo, prompt_ids=st.lists(st.integers(0, 1000), max_size=4),
                                                  completion_ids=st.lists(st.integers(0, 1000), max_size=4),
                                                  logprobs=st.lists(st.floats(-50, 0), max_size=4)),
                     usage=st.none() | st.builds(Usage, prompt_tokens=st.integers(0, 99), completion_tokens=st.integers(0, 99)))


@settings(max_examples=100, deadline=None)
@given(msgs=st.lists(messages, max_size=5), success=st.booleans(), failure=st.sampled_from([None, "agent", "infra", "user_sim", "judge", "harness"]),
       answer=json_scalar)
def test_trajectory_json_round_trip(msgs, success, failure, answer):
    task = Task(id="t", domain="d", seed=1, length=1, subtasks=[
        SubtaskInstance(template="x", bind={"o": "o1"}, ask="do it", solution=[Step(tool="t", args={"a": 1})],
                        answer=answer, touched={"orders": ["o1"]}, expected={"orders": {"o1": {"id": "o1"}}})])
    traj = Trajectory(episode_id="e", task=task, messages=msgs, calls=[CallRecord(name="t", args={"a": 1}, error=None)],
                      checkpoints=[Checkpoint(asked=1, message_index=2, records={"orders": {"o1": None}})],
                      outcome=Outcome(success=success, failure=failure, first_failed=0),
                      scores={"v": Score(value=0.5, items=[ItemScore(id="i", passed=True)])})
    again = Trajectory.model_validate_json(traj.model_dump_json())
    assert again == traj
    assert again.model_dump_json() == traj.model_dump_json()


def test_openai_message_shape():
    call = ToolCall.make("get_order", {"order_id": "o1"}, id="call_1")
    msg = Message(role="assistant", tool_calls=[call])
    out = msg.to_openai()
    assert out == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "o1"}'}}]}
    assert call.parsed_args() == {"order_id": "o1"}
    assert ToolResult(name="x", content="y").is_error is False


# -- the outcome model ---------------------------------------------------------------------------

import json  # noqa: E402

import pytest  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from toolzoo.core import FailureKind, Timing, counts_for_policy, counts_for_rate, failure_kind, is_success  # noqa: E402

outcomes = st.builds(Outcome, success=st.booleans(), reward=st.floats(0, 1),
                     failure=st.none() | st.sampled_from(list(FailureKind)), reason=text)


@settings(max_examples=200, deadline=None)
@given(o=st.none() | outcomes)
def test_one_counting_rule(o):
    counted = counts_for_rate(o)
    # counted exactly when the agent itself was judged: a success or an agent failure
    assert counted == (o is not None and o.failure in (None, FailureKind.AGENT))
    assert counts_for_policy(o) == counted
    assert is_success(o) == (counted and o.success)
    if o is not None and o.failure in (FailureKind.JUDGE, FailureKind.INFRA, FailureKind.HARNESS,
                                       FailureKind.USER_SIM):
        assert not counted and not is_success(o)  # excluded whatever ``success`` says
    assert failure_kind(o) == (FailureKind.INFRA if o is None else o.failure)


def test_failure_kinds_are_stored_as_the_old_strings_and_old_folders_load():
    assert [k.value for k in FailureKind] == ["agent", "infra", "user_sim", "judge", "harness"]
    o = Outcome.infra("sandbox died")
    assert json.loads(o.model_dump_json())["failure"] == "infra"
    old = Outcome.model_validate_json('{"success": false, "failure": "user_sim", "reason": "x"}')
    assert old.failure is FailureKind.USER_SIM and old.failure == "user_sim"
    with pytest.raises(ValidationError):
        Outcome.model_validate_json('{"success": false, "failure": "agnet"}')
    assert Trajectory.model_validate_json(Trajectory(episode_id="e", task=Task(id="t", domain="d", seed=0, length=1,
                                                                                 subtasks=[])).model_dump_json(
        exclude={"timing"})).timing == Timing()  # a trajectory stored before timing existed


def test_outcomes_are_frozen_and_constructors_attribute():
    o = Outcome(success=True, reward=1.0, subtasks_completed=2)
    with pytest.raises(ValidationError):
        o.failure = FailureKind.JUDGE  # type: ignore[misc]
    j = Outcome.judge_failed("endpoint down", o)
    assert j.failure is FailureKind.JUDGE and j.success and j.subtasks_completed == 2 and not counts_for_rate(j)
    assert o.failure is None  # the verifiable outcome is untouched
    assert Outcome.harness("KeyError").retryable and Outcome.infra("x").retryable
    assert not Outcome.user_sim("x").retryable and not Outcome.failed("agent").retryable
    assert Outcome.failed("agent", "wrong").judged


def test_episode_clock_counts_harness_intervals_once():
    import time as _time

    from toolzoo.clock import EpisodeClock

    clock = EpisodeClock()
    with clock.harness("simulator"):
        with clock.harness("endpoint_retry"):  # nested: the same interval
            _time.sleep(0.05)
        clock.credit("endpoint_retry", 0.05)  # already inside a section: not added again
    harness = clock.harness_s()
    assert 0.05 <= harness < 0.09
    clock.credit("endpoint_retry", 0.5)  # outside any section: moved from agent to harness time
    assert clock.harness_s() >= harness + 0.5 and clock.agent_s() == 0.0
    t = clock.timing()
    assert t.harness["simulator"] >= 0.05 and t.harness["endpoint_retry"] >= 0.55
