"""Property tests of the v2 engine: path writes against a deep-copy reference, calc against
Python's arithmetic, def expansion against evaluating the body, and all-or-nothing calls."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolzoo.tools import paths
from toolzoo.tools.cel import compile_expr
from toolzoo.tools.cel_lib import calc
from toolzoo.tools.defs import expand, parse_defs

json_leaf = st.none() | st.booleans() | st.integers(-100, 100) | st.text(max_size=3)
json_tree = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from("abc"), c, max_size=3),
                         max_leaves=12)
step = st.sampled_from(["a", "b", "c"]) | st.integers(-1, 3)


def _reference(root, steps, op, value):
    """The obvious implementation: deep-copy, walk, mutate; None when the path is invalid."""
    out = copy.deepcopy(root)
    node = out
    try:
        for s in steps[:-1]:
            if isinstance(node, dict) and isinstance(s, str):
                node = node[s]
            elif isinstance(node, list) and isinstance(s, int) and not isinstance(s, bool) and 0 <= s < len(node):
                node = node[s]
            else:
                return None
        last = steps[-1]
        if isinstance(node, dict) and isinstance(last, str):
            if op == "set":
                node[last] = value
            elif op == "remove":
                del node[last]
            else:
                cur = node.get(last, [])
                if not isinstance(cur, list):
                    return None
                node[last] = cur + [value]
        elif isinstance(node, list) and isinstance(last, int) and not isinstance(last, bool) and 0 <= last < len(node):
            if op == "set":
                node[last] = value
            elif op == "remove":
                del node[last]
            else:
                if not isinstance(node[last], list):
                    return None
                node[last] = node[last] + [value]
        else:
            return None
    except KeyError:
        return None
    return out


@settings(max_examples=300, deadline=None)
@given(root=st.dictionaries(st.sampled_from("abc"), json_tree, max_size=3), steps=st.lists(step, min_size=1, max_size=4),
       op=st.sampled_from(["set", "remove", "append"]), value=json_tree)
def test_path_writes_match_a_deep_copy_reference_and_never_touch_the_input(root, steps, op, value):
    frozen = json.dumps(root, sort_keys=True)
    expected = _reference(root, steps, op, value)
    try:
        got = paths.apply(root, steps, op, value)
    except paths.PathError:
        got = None
    assert got == expected
    assert json.dumps(root, sort_keys=True) == frozen  # copy-on-write: the input is unchanged


numbers = st.integers(0, 50).map(str) | st.decimals(0, 50, places=2, allow_nan=False).map(str)


def _arith():
    return st.recursive(numbers, lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner)
                        .map(lambda t: f"({t[0]} {t[1]} {t[2]})") | inner.map(lambda e: f"-{e}"), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(expr=_arith())
def test_calc_agrees_with_python_arithmetic(expr):
    try:
        expected = float(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - the oracle, on generated arithmetic only
    except ZeroDivisionError:
        with pytest.raises(ValueError, match="division by zero"):
            calc(expr)
        return
    assert calc(expr) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert compile_expr(f"calc('{expr}')").eval({}) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("bad", ["__import__('os')", "a + 1", "2 ** 100000", "[1]", "1 if 1 else 2", "x" * 2000])
def test_calc_refuses_anything_but_arithmetic(bad):
    with pytest.raises(ValueError):
        calc(bad)


small = st.integers(-20, 20)
body_atoms = st.sampled_from(["a", "b", "1", "2", "args.x"])


def _bodies():
    return st.recursive(body_atoms, lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner)
                        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"), max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(body=_bodies(), x=small, y=small, z=small)
def test_def_expansion_means_evaluating_the_body_with_the_arguments(body, x, y, z):
    defs, problems = parse_defs({"f(a, b)": body})
    assert not problems
    call = f"f(args.x + {y}, {z})"
    expanded = expand(call, defs)
    direct = compile_expr(body).eval({"a": x + y, "b": z, "args": {"x": x}})
    assert compile_expr(expanded).eval({"args": {"x": x}}) == direct


@pytest.fixture(scope="module")
def shop_domain(tmp_path_factory):
    from tests.tools.test_v2_format import DB, DOMAIN
    from toolzoo.tools.loader import load_domain

    base = tmp_path_factory.mktemp("shop")
    (base / "data").mkdir()
    (base / "data" / "db.json").write_text(json.dumps(DB))
    (base / "shop.yaml").write_text(DOMAIN)
    return load_domain(base / "shop.yaml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_v2_calls_are_all_or_nothing_and_keep_records_valid(shop_domain, data):
    from toolzoo.tools.runtime import DomainRuntime
    from toolzoo.tools.state import seed_state

    d = shop_domain
    state = seed_state(d.spec, 0)
    rt = DomainRuntime(d, state)
    values = st.sampled_from(["o1", "o2", "u1", "u2", "gift_card_1", "credit_card_1", "zz"]) | st.floats(-5, 60) \
        | st.integers(-2, 3) | st.sampled_from(["1+2", "1/0", "a"])
    for _ in range(6):
        tool = data.draw(st.sampled_from(sorted(d.tools)))
        props = sorted(d.tools[tool].spec.parameters.get("properties", {}))
        args = data.draw(st.fixed_dictionaries({p: values for p in props}))
        before, snap = state.hash(), state.snapshot()
        snap_json = json.dumps(snap.to_dict(), sort_keys=True)
        result = asyncio.run(rt.call(tool, args))
        if result.is_error:
            assert state.hash() == before, f"{tool}({args}) failed but changed state: {result.content}"
        assert json.dumps(snap.to_dict(), sort_keys=True) == snap_json  # nested writes never reach a snapshot
        for coll, recs in state.data.items():
            for rec in recs.values():
                assert d.record_validators[coll].is_valid(rec)
