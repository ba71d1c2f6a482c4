"""The precompiled accessors (toolzoo/tools/cel_fast.py) against the CEL path: the same values
(of the same types, all the way down) and the same errors, on generated states and arguments
that include every kind of awkward value (64-bit edges, doubles, nan, lone surrogates, tuples,
non-text map keys, missing names, records and fields)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolzoo.tools.cel import CelError, compile_expr, env_from_dict
from toolzoo.tools.cel_fast import Accessor
from toolzoo.tools.state import State


def same(a, b) -> bool:
    """Equal and of the same types throughout (``1 == 1.0 == True`` in Python, not in CEL)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


_texts = st.sampled_from(["a", "b", "zz", "", "é", "日本", "\ud800", "a\udfff"])
_ints = st.integers(-3, 3) | st.sampled_from([2**62, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 3 * 2**62])
_floats = st.sampled_from([0.0, -0.0, 1.5, -2.25, 1e308, math.inf, math.nan])
_scalar = st.none() | st.booleans() | _ints | _floats | _texts
_value = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=2).map(tuple)
    | st.dictionaries(st.sampled_from(["x", "n", "é", "\ud800"]) | st.just(1), inner, max_size=3),
    max_leaves=5,
)
# Mostly well-typed values (so the accessors answer often), sometimes anything.
_field_value = st.one_of(_texts, _ints, _floats, st.booleans(), _value)
_keyish = st.sampled_from(["a", "b", "zz"]) | _value

_record = st.fixed_dictionaries({}, optional={"n": _field_value, "s": _field_value, "ref": _keyish,
                                              "d": st.fixed_dictionaries({}, optional={"x": _field_value}) | _value})
_records = st.dictionaries(st.sampled_from(["a", "b", "c"]), _record, max_size=3)
_args = st.fixed_dictionaries({}, optional={"x": _field_value, "y": _field_value, "k": _keyish,
                                            "d": st.fixed_dictionaries({}, optional={"x": _field_value}) | _value})
# Tame: what domains hold (so most evaluations are answered by the accessor itself).
_tame = st.sampled_from(["a", "b", "zz", "é"]) | st.integers(-3, 3) | st.booleans()
_tame_record = st.fixed_dictionaries({"n": st.integers(-3, 3), "s": _tame, "ref": st.sampled_from(["a", "b"]),
                                      "d": st.fixed_dictionaries({"x": _tame})})
_tame_records = st.dictionaries(st.sampled_from(["a", "b", "zz"]), _tame_record, min_size=2, max_size=3)
_tame_args = st.fixed_dictionaries({"x": _tame, "y": _tame, "k": st.sampled_from(["a", "b"]),
                                    "d": st.fixed_dictionaries({"x": _tame})})

_key_exprs = st.sampled_from(["args.k", "'a'", "'b'", "'zz'", "5", "true", "order.ref", "args.x",
                              "state.other['a'].ref"])
_leaf = st.one_of(
    st.sampled_from(["'a'", '"b"', "''", "1", "0", "-3", "123456789012345", "true", "false", "null",
                     "args.x", "args.y", "args.d.x", "args", "args.d", "order", "order.n", "order.s",
                     "prev.k", "missing", "missing.x", "args.x.y"]),
    _key_exprs.map(lambda k: f"state.items[{k}]"),
    _key_exprs.map(lambda k: f"state.items[{k}].n"),
    _key_exprs.map(lambda k: f"state.items[{k}].s"),
    _key_exprs.map(lambda k: f"state.items[{k}].d.x"),
    _key_exprs.map(lambda k: f"state.other[state.items[{k}].ref].n"),
    _key_exprs.map(lambda k: f"{k} in state.items"),
)
_BINARY = ["==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "&&", "||"]


def _compound(inner):
    return st.one_of(
        st.tuples(inner, st.sampled_from(_BINARY), inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"!{e}" if e[:1] in "(" or e[:1].isalpha() else f"!({e})"),
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(inner, min_size=1, max_size=3).map(
            lambda xs: "{" + ", ".join(f"'{k}': {v}" for k, v in zip(["order_id", "status", "n"], xs)) + "}"),
        inner.map(lambda e: f"({e}) in state.other"),
    )


_exprs = st.recursive(_leaf, _compound, max_leaves=4)

# Well-typed by construction (ints, texts, booleans), so that on typical states the accessor
# itself answers most of them.
_K = st.sampled_from(["args.k", "'a'", "'b'", "order.ref", "state.other[args.k].ref"])
_int_leaf = st.sampled_from(["1", "-3", "0", "order.n"]) | _K.map(lambda k: f"state.items[{k}].n") \
    | _K.map(lambda k: f"state.other[state.items[{k}].ref].n")
_str_leaf = st.sampled_from(["'a'", '"b"', "args.k", "order.ref"]) | _K.map(lambda k: f"state.items[{k}].ref")
_int_expr = st.recursive(_int_leaf, lambda i: st.tuples(i, st.sampled_from(["+", "-", "*"]), i)
                         .map(lambda t: f"({t[0]} {t[1]} {t[2]})"), max_leaves=4)
_str_expr = st.recursive(_str_leaf, lambda s: st.tuples(s, s).map(lambda t: f"{t[0]} + {t[1]}"), max_leaves=3)
_bool_leaf = st.one_of(
    st.sampled_from(["true", "false"]),
    _K.map(lambda k: f"{k} in state.items"),
    st.tuples(_int_expr, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _int_expr).map(" ".join),
    st.tuples(_str_expr, st.sampled_from(["==", "!=", "<", ">="]), _str_expr).map(" ".join),
)
_bool_expr = st.recursive(_bool_leaf, lambda b: st.one_of(
    st.tuples(b, st.sampled_from(["&&", "||", "==", "!="]), b).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    b.map(lambda e: f"!({e})")), max_leaves=4)
_typed = st.one_of(_int_expr, _str_expr, _bool_expr)
_typed = _typed | st.lists(_typed, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]") | st.lists(
    _typed, min_size=1, max_size=3).map(lambda xs: "{" + ", ".join(f"'{k}': {v}" for k, v in zip("abc", xs)) + "}")


def _both(expr: str, env):
    fast = compile_expr(expr)
    slow = dataclasses.replace(fast, fast=None)
    try:
        expected = ("ok", slow.eval(env))
    except CelError as exc:
        expected = ("error", str(exc))
    try:
        got = ("ok", fast.eval(env))
    except CelError as exc:
        got = ("error", str(exc))
    return fast, expected, got


_wild = dict(items=_records, other=_records, args=_args, order=_record | _value, with_order=st.booleans())
_typical = dict(items=_tame_records, other=_tame_records, args=_tame_args, order=_tame_record, with_order=st.just(True))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=_exprs, **_wild)
def test_accessors_give_cels_values_and_errors(expr, items, other, args, order, with_order):
    _check(expr, items, other, args, order, with_order)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=_exprs | _typed, **_typical)
def test_accessors_give_cels_values_on_typical_states(expr, items, other, args, order, with_order):
    _check(expr, items, other, args, order, with_order)


def _check(expr, items, other, args, order, with_order):
    try:
        compile_expr(expr)
    except CelError:
        return  # not CEL at all
    variables = {"args": args, "prev": {"k": "a"}}
    if with_order:
        variables["order"] = order
    data = {"items": items, "other": other}
    state = State(data, {"items": "id", "other": "id"})
    before = repr(data), repr(variables)
    for env in (state.cel_context(**variables), env_from_dict({**variables, "state": data})):
        fast, expected, got = _both(expr, env)
        assert got[0] == expected[0], (expr, expected, got)
        if got[0] == "error":
            assert got[1] == expected[1]
        else:
            assert same(got[1], expected[1]), (expr, expected, got)
    assert (repr(data), repr(variables)) == before  # nothing read was changed


@settings(max_examples=300, deadline=None)
@given(items=_records, args=_args)
def test_returned_containers_are_fresh(items, args):
    """A map built from reads never shares the state's (or the arguments') containers."""
    state = State({"items": items}, {"items": "id"})
    expr = compile_expr("{'r': state.items[args.k], 'd': args.d, 'l': [args.d]}")
    assert isinstance(expr.fast, Accessor)
    try:
        got = expr.eval(state.cel_context(args=args))
    except CelError:
        return
    record = items.get(args.get("k")) if isinstance(args.get("k"), str) else None
    for v in (got["r"], got["d"], got["l"][0]):
        if isinstance(v, (dict, list)):
            assert v is not record and v is not args.get("d")


# -- what is covered ------------------------------------------------------------------------------
COVERED = [
    "{'order_id': args.order_id, 'status': 'refunded'}",
    "state.customers[state.orders[args.order_id].customer].credit + state.orders[args.order_id].total",
    "state.orders[args.order_id].status == 'placed'",
    "state.orders[args.order_id].status != \"placed\" && args.n > 0",
    "args.a in state.c && !(args.b in state.c) || args.n <= -3",
    "[args.a, state.c[args.k], {'x': 1, 'y': null}]",
    "order.total * 2 - args.n",
    "state.c[args.k].f.g >= 10",
    "[]",
    "{}",
    "(args.x)",
]

NOT_COVERED = [
    "args.n > 0 ? 1 : 2",  # ternary
    "args.n / 2",  # int division
    "args.n % 2",
    "size(args.list)",  # a function
    "args.s.startsWith('a')",  # a method
    "args.n + 1.5",  # a double literal
    "args.n + 1u",  # uint
    "'a\\'b' == args.s",  # an escape
    "{'a': 1, 'a': 2}",  # a repeated key (CEL: the last wins)
    "{args.k: 1}",  # a computed key
    "[1, 2,]",  # a trailing comma
    "args.list[0]",  # an index
    "args.n in state.c + 1",  # state.c not the whole right operand
    "args.k in [1, 2]",
    "-args.n",  # negation of a read
    "has(args.x)",
    "state.c.filter(k, true) == []",  # a whole collection
    "r'raw' == args.s",
    "9999999999999999 == args.n",  # more than 15 digits
]


@pytest.mark.parametrize("source", COVERED)
def test_covered_shapes_get_an_accessor(source):
    assert isinstance(compile_expr(source).fast, Accessor)


@pytest.mark.parametrize("source", NOT_COVERED)
def test_other_shapes_stay_with_cel(source):
    try:
        expr = compile_expr(source)
    except CelError:
        return
    assert not isinstance(expr.fast, Accessor)


def test_accessors_answer_the_ordinary_cases_themselves():
    """On well-typed values the accessor itself answers (CEL is not entered)."""
    state = State({"orders": {"o1": {"id": "o1", "customer": "c1", "status": "delivered", "total": 40}},
                   "customers": {"c1": {"id": "c1", "credit": 2}}}, {"orders": "id", "customers": "id"})
    env = state.cel_context(args={"order_id": "o1"})
    cases = {
        "state.customers[state.orders[args.order_id].customer].credit + state.orders[args.order_id].total": 42,
        "state.orders[args.order_id].status == 'delivered'": True,
        "{'order_id': args.order_id, 'status': 'refunded'}": {"order_id": "o1", "status": "refunded"},
        "[args.order_id, 1, true, null]": ["o1", 1, True, None],
    }
    for source, value in cases.items():
        expr = compile_expr(source)
        assert same(expr.fast.run(env), value), source
        assert same(dataclasses.replace(expr, fast=None).eval(env), value), source
