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
@given(msgs=st.lists(messages, max_size=5), success=st.booleans(), failure=st.sampled_from([None, "agent", "infra", "user_sim", "judge"]),
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
