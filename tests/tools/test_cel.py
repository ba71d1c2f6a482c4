"""The CEL layer: compile errors, templates, and the free-variable rewrite (property-tested
against evaluating the original expression with a plain context)."""

from __future__ import annotations

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.tools.cel import CelError, compile_expr, compile_template, env_from_dict, rewrite
from toolzoo.tools.state import State


def test_syntax_error_reports_parser_message():
    with pytest.raises(CelError) as info:
        compile_expr("a +* b")
    assert "Syntax error" in str(info.value) or "syntax" in str(info.value).lower()


def test_template_renders_and_escapes():
    t = compile_template("order {args.id} costs {{{args.n * 2}}} {{literal}}")
    assert t.render({"args": {"id": "o1", "n": 21}}) == "order o1 costs {42} {literal}"
    with pytest.raises(CelError):
        compile_template("unclosed {args.id")


def test_rewrite_leaves_state_macros_fields_and_strings_alone():
    src = "state.orders.filter(k, state.orders[k].customer == args.c && 'args' != prev.x)"
    out = rewrite(src)
    assert "_tz('args', 'c')" in out and "_tz('prev', 'x')" in out and "'args'" in out
    assert "state__orders.filter(k, state__orders[k].customer" in out
    assert rewrite("has(args.x.y)") == "has(_tz('args', 'x').y)"
    assert compile_expr("has(args.x)").eval({"args": {"x": 1}}) is True
    assert compile_expr("has(args.y)").eval({"args": {"x": 1}}) is False


def test_undeclared_variable_is_a_clear_error():
    with pytest.raises(CelError) as info:
        compile_expr("nosuch + 1").eval({})
    assert "nosuch" in str(info.value)


def test_state_context_is_reused_and_resynced_after_writes():
    s = State({"items": {"a": {"id": "a", "n": 1}}}, {"items": "id"})
    env1, env2 = s.cel_context(args={}), s.cel_context(args={"x": 1})
    assert compile_expr("state.items.filter(k, state.items[k].n == args.x)").eval(env2) == ["a"]
    assert env1.ctx is env2.ctx
    s.set_field("items", "a", "n", 2)
    env3 = s.cel_context()  # the written collection is converted again; the context is kept
    assert compile_expr("state.items['a'].n").eval(env3) == 2
    s.restore({"items": {"a": {"id": "a", "n": 1}}})
    assert compile_expr("state.items['a'].n").eval(s.cel_context()) == 1


names = st.sampled_from(["a", "b", "args", "prev", "x1"])
ints = st.integers(-50, 50).map(str)


def _exprs():
    leaf = names | ints | names.map(lambda n: f"m.{n}")
    return st.recursive(leaf, lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "==", "<", "!="]), inner)
                        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"), max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(expr=_exprs(), values=st.fixed_dictionaries({n: st.integers(-20, 20) for n in ["a", "b", "args", "prev", "x1"]}))
def test_rewrite_preserves_meaning(expr, values):
    variables = {**values, "m": dict(values)}
    try:
        expected = cel.evaluate(expr, variables)
    except Exception:
        with pytest.raises(CelError):
            compile_expr(expr).eval(variables)
        return
    assert compile_expr(expr).eval(env_from_dict(variables)) == expected
