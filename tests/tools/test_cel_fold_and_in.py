"""fold() in the CEL library, `x in state.c[k].f` (an `in` over part of a record), and the
shared values effects may read (fresh containers for every other caller)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.tools.cel import CelError, compile_expr, env_from_dict
from toolzoo.tools.state import State

import pytest

STATE = {"users": {"u1": {"pm": {"a": 1, "b": 2}, "tags": ["x"]}, "u2": {"pm": {}, "tags": []}}}


def ev(src, **variables):
    return compile_expr(src).eval(env_from_dict({"state": STATE, **variables}))


@pytest.mark.parametrize("src, expected", [
    ("x in state.users[u].pm", True),
    ("'b' in state.users[u].pm", True),
    ("'c' in state.users[u].pm", False),
    ("x in state.users['u2'].pm", False),
    ("!(x in state.users[u].pm) || false", False),
    ("u in state.users && x in state.users[u].pm", True),
    ("'x' in state.users[u].tags", True),
    ("'pm' in state.users[u]", True),
    ("u in state.users", True),
    ("'nobody' in state.users", False),
])
def test_in_over_part_of_a_record(src, expected):
    assert ev(src, x="a", u="u1") is expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-10**6, 10**6), max_size=30), st.integers(-100, 100))
def test_fold_with_plus_is_sum(xs, init):
    assert ev("fold(xs, init, 'acc + x')", xs=xs, init=init) == init + sum(xs)


def test_fold_runs_in_order_and_sees_the_library():
    assert ev("fold(['a', 'b', 'c'], '', 'acc + upperAscii(x)')") == "ABC"
    assert ev("fold(items, 0.0, 'acc + x.price * double(x.n)')",
              items=[{"price": 2.5, "n": 2}, {"price": 1.0, "n": 3}]) == 8.0
    assert ev("[1, 2, 3].fold(1, 'acc * x')") == 6
    assert ev("fold([], 7, 'acc + x')") == 7


@pytest.mark.parametrize("src, words", [
    ("fold([1], 0, 'acc + y')", "acc + y"),  # only acc and x are visible
    ("fold([1], 0, 'acc +')", "not a CEL expression"),
    ("fold(1, 0, 'acc')", "takes a list"),
    ("fold([1], 0, 5)", "CEL text"),
])
def test_fold_errors_name_the_problem(src, words):
    with pytest.raises(CelError, match="fold") as info:
        ev(src, u="u1")
    assert words in str(info.value)


def test_a_record_read_by_key_is_a_fresh_copy_unless_shared():
    state = State({"users": {"u1": {"pm": {"a": 1}, "tags": ["x"]}}})
    expr = compile_expr("state.users[u]")
    env = state.cel_context(u="u1")
    copy = expr.eval(env)
    assert copy == state.get("users", "u1") and copy is not state.get("users", "u1")
    copy["pm"]["a"] = 99
    copy["tags"].append("y")
    assert state.get("users", "u1") == {"pm": {"a": 1}, "tags": ["x"]}
    assert expr.eval(env, share=True) is state.get("users", "u1")
