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
    assert "keys__orders.filter(k, _tzr('orders', k, 'customer')" in out  # iterated: keys, records by key
    assert rewrite("state.orders == {}") == "state__orders == {}"  # used as a map: the map
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
    assert env1.contexts is env2.contexts
    whole = frozenset({"keys__items"})
    assert env1.contexts.context(whole) is env2.contexts.context(whole)
    assert compile_expr("state.items").eval(env2) == {"a": {"id": "a", "n": 1}}
    s.set_field("items", "a", "n", 2)
    env3 = s.cel_context()  # the written collection is converted again; the context is kept
    assert compile_expr("state.items.filter(k, state.items[k].n == 2)").eval(env3) == ["a"]
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


# -- state reached by key (``_tzr``/``_tzin`` and the pure-Python fast path) against plain CEL
# evaluating the original expression with ``state`` as an ordinary map variable.

# (``args.missing`` is left out: toolzoo deliberately reads a missing field of a free name as null.)
_keys = st.sampled_from(["args.k", "prev.k", "'a'", "'b'", "'zz'", "5", "true"])


def _state_exprs():
    key = _keys
    read = st.one_of(
        key.map(lambda k: f"{k} in state.items"),
        key.map(lambda k: f"state.items[{k}]"),
        key.map(lambda k: f"state.items[{k}].n"),
        key.map(lambda k: f"state.items[{k}].n + 1"),
        key.map(lambda k: f"has(state.items[{k}].n)"),
        key.map(lambda k: f"state.other[state.items[{k}].ref].n"),
        key.map(lambda k: f"!({k} in state.other) || state.other[{k}].n > 0"),
        key.map(lambda k: f"{k} in state.items == {k} in state.other"),
        key.map(lambda k: f"[{k}, 'a'][0] in state.items ? 1 : {k} in state.other"),
        st.just("size(state.items)"),
        st.just("state.items.size() + size(state.other)"),
        st.just("state.items.exists(x, x == 'a') || state.other.all(x, has(state.other[x].n))"),
        st.just("state.items.map(x, x).size() == size(state.items.filter(x, x != 'zz'))"),
        st.just("state.items == state.other"),
        key.map(lambda k: f"size(state.items.filter(x, state.items[x].ref == {k}))"),
        key.map(lambda k: f"size(state.items.filter(x, state.items[x].ref != {k}))"),
        st.just("size(state.other.filter(x, state.other[x].n == 1))"),
        st.just("size(state.items.filter(x, true))"),
        st.just("state.items.filter(x, has(state.items[x].n) && state.items[x].n > 0).size()"),
    )
    return st.recursive(read, lambda inner: st.tuples(inner, st.sampled_from(["&&", "||", "==", "!="]), inner)
                        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"), max_leaves=3)


_records = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.fixed_dictionaries(
    {"id": st.just("x")}, optional={"n": st.integers(-3, 3), "ref": st.sampled_from(["a", "b", "q"])}), max_size=3)


@settings(max_examples=300, deadline=None)
@given(expr=_state_exprs(), items=_records, other=_records, k=st.sampled_from(["a", "b", "zz"]))
def test_keyed_state_reads_mean_what_plain_cel_means(expr, items, other, k):
    data = {"items": items, "other": other}
    variables = {"args": {"k": k}, "prev": {"k": k}}
    plain = {**variables, "state": data}
    try:
        expected = cel.evaluate(expr, plain)
    except Exception as exc:
        with pytest.raises(CelError) as info:
            compile_expr(expr).eval(plain)
        if isinstance(exc, KeyError):
            assert f"no such key {exc.args[0]!r}" in str(info.value)
        return
    # The same through a State (cached contexts, by-key reads) and through a one-off env.
    state = State(data, {"items": "id", "other": "id"})
    assert compile_expr(expr).eval(state.cel_context(**variables)) == expected
    assert compile_expr(expr).eval(plain) == expected


def test_keyed_reads_follow_writes_and_restores():
    s = State({"items": {"a": {"id": "a", "n": 1}}}, {"items": "id"})
    get, has_key, listing = (compile_expr(e) for e in ("state.items[args.k].n", "args.k in state.items",
                                                       "state.items.filter(x, true)"))
    env = s.cel_context(args={"k": "b"})
    assert (has_key.eval(env), listing.eval(env)) == (False, ["a"])
    snap = s.snapshot()
    s.put("items", "b", {"id": "b", "n": 7})
    env = s.cel_context(args={"k": "b"})
    assert (get.eval(env), has_key.eval(env), sorted(listing.eval(env))) == (7, True, ["a", "b"])
    s.restore(snap)
    env = s.cel_context(args={"k": "b"})
    assert (has_key.eval(env), listing.eval(env)) == (False, ["a"])
    with pytest.raises(CelError, match="no such key 'b'"):
        get.eval(env)


def test_returned_records_are_copies_not_the_state():
    s = State({"items": {"a": {"id": "a", "tags": ["x"]}}}, {"items": "id"})
    got = compile_expr("state.items[args.k]").eval(s.cel_context(args={"k": "a"}))
    got["tags"].append("y")
    got["id"] = "changed"
    assert s.get("items", "a") == {"id": "a", "tags": ["x"]}


def test_a_write_converts_nothing_until_a_listing_reads_the_collection():
    """Writes are O(what changed): only a whole-collection expression converts a collection,
    and only the one it reads."""
    s = State({"big": {str(i): {"id": str(i), "n": i} for i in range(50)}, "small": {"a": {"id": "a", "n": 0}}},
              {"big": "id", "small": "id"})
    by_key = compile_expr("args.k in state.big && state.big[args.k].n == 3 && state.small['a'].n == 0")
    assert by_key.whole == frozenset()
    for _ in range(5):
        s.set_field("big", "3", "n", 3)
        s.set_field("small", "a", "n", 0)
        assert by_key.eval(s.cel_context(args={"k": "3"})) is True
    contexts = s.cel_context().contexts
    assert contexts._contexts == {}  # nothing converted: every read went by key
    listing = compile_expr("size(state.small)")
    assert listing.whole == frozenset({"keys__small"}) and listing.eval(s.cel_context()) == 1
    assert list(contexts._contexts) == [frozenset({"keys__small"})]  # the big collection never was
    # A listing holds the keys: writing a record leaves them as they are; an insert does not.
    big_list = compile_expr("sorted(state.big.filter(k, state.big[k].n > 47))")
    assert big_list.eval(s.cel_context()) == ["48", "49"]
    held = contexts._contexts[frozenset({"keys__big"})][1]["keys__big"][1]
    s.set_field("big", "3", "n", 100)
    assert big_list.eval(s.cel_context()) == ["3", "48", "49"]
    assert contexts._contexts[frozenset({"keys__big"})][1]["keys__big"][1] is held  # not converted again
    s.put("big", "x", {"id": "x", "n": 60})
    assert big_list.eval(s.cel_context()) == ["3", "48", "49", "x"]
    assert contexts._contexts[frozenset({"keys__big"})][1]["keys__big"][1] is not held
    s.delete("big", "x")
    assert big_list.eval(s.cel_context()) == ["3", "48", "49"]


@settings(max_examples=150, deadline=None)
@given(items=_records, k=st.sampled_from(["a", "b", "zz"]), expr=st.sampled_from([
    "sorted(state.items.filter(x, state.items[x].ref == args.k))",
    "sorted(state.items.filter(x, state.items[x].ref != 'b'))",
    "sorted(state.items.filter(x, state.items[x].n == 1))",
    "sorted(state.items.filter(x, true))",
]))
def test_python_listings_agree_with_cel(items, k, expr):
    """The pure-Python listing loop against the same expression evaluated in CEL."""
    import dataclasses

    fast = compile_expr(expr)
    assert fast.fast is not None
    slow = dataclasses.replace(fast, fast=None)
    state = State({"items": items}, {"items": "id"})
    env = state.cel_context(args={"k": k})
    try:
        expected = slow.eval(env)
    except CelError as exc:
        with pytest.raises(CelError) as info:
            fast.eval(env)
        assert str(info.value) == str(exc)
        return
    assert fast.eval(env) == expected
