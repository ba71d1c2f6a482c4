"""Snapshots and restores (toolzoo/tools/state.py), property-tested against deep copies: a
snapshot taken at any point of a random run of set/put/delete equals a deep copy taken there
(keys in the same order), stays so whatever follows, and restoring it brings the state back to
exactly that copy (data, key order, hash), also with writes and other restores after it."""

from __future__ import annotations

import copy
import pickle
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.tools import state as state_mod
from toolzoo.tools.cel import compile_expr
from toolzoo.tools.state import DELETED, Snapshot, State, _materialize, seed_state, state_hash

COLLECTIONS = ("items", "tags")
KEYS = [f"k{i}" for i in range(6)]


def reference_diff(before: dict[str, dict], after: dict[str, dict]) -> dict[str, list[str]]:
    """Per collection, the keys whose record differs (changed, inserted or deleted), the
    obvious O(records) way: what ``State.changed_since`` must equal."""
    out: dict[str, list[str]] = {}
    for coll in after:
        keys = sorted(k for k in set(before[coll]) | set(after[coll]) if before[coll].get(k) != after[coll].get(k))
        if keys:
            out[coll] = keys
    return out


def _seeded() -> dict[str, dict[str, dict]]:
    return {"items": {k: {"id": k, "n": i} for i, k in enumerate(KEYS[:4])},
            "tags": {k: {"id": k, "n": -i} for i, k in enumerate(KEYS[2:5])}}


def _ordered(data) -> list:
    """Collections and records with their order: dict equality alone ignores order."""
    return [(name, list(recs.items())) for name, recs in data.items()]


def _consistent(state: State) -> None:
    """White box: each live collection is exactly its base plus its changes, in order."""
    for name, live in state.data.items():
        rebuilt = _materialize(state._base[name], state._changes[name], state._tail.get(name, ()))
        assert list(live.items()) == list(rebuilt.items())
        if name not in state._owned:
            assert live is state._base[name]


_coll = st.sampled_from(COLLECTIONS + ("items",) * 2)
_key = st.sampled_from(KEYS)
_op = st.one_of(
    st.tuples(st.just("set"), _coll, _key, st.integers(-3, 3)),
    st.tuples(st.just("put"), _coll, _key, st.integers(-3, 3)),
    st.tuples(st.just("delete"), _coll, _key),
    st.tuples(st.just("snapshot")),
    st.tuples(st.just("restore"), st.integers(0, 10**6)),
    st.tuples(st.just("restore_copy"), st.integers(0, 10**6)),
)


@settings(max_examples=1000, deadline=None)
@given(ops=st.lists(_op, min_size=4, max_size=80), rebase_early=st.booleans())
def test_snapshots_equal_deep_copies_and_restore_returns_exactly(ops, rebase_early):
    # rebase_early: collections take their live dict as the new base after 3 changes (instead of
    # 64 + a quarter), so runs cross rebases and restore snapshots of older bases.
    limit = (lambda base: 3) if rebase_early else state_mod._change_limit
    with mock.patch.object(state_mod, "_change_limit", limit):
        seeded = _seeded()
        pristine = copy.deepcopy(seeded)
        state = State(seeded, {c: "id" for c in COLLECTIONS})
        model = copy.deepcopy(seeded)  # what the state must hold, with plain dict semantics
        taken: list[tuple[Snapshot, dict]] = []
        listing = compile_expr("state.items.filter(k, true)")
        for op in ops:
            kind = op[0]
            if kind == "set":
                _, c, k, v = op
                if k not in model[c]:
                    continue
                state.set_field(c, k, "n", v)
                model[c][k] = {**model[c][k], "n": v}
            elif kind == "put":
                _, c, k, v = op
                state.put(c, k, {"id": k, "n": v, "put": True})
                model[c][k] = {"id": k, "n": v, "put": True}
            elif kind == "delete":
                _, c, k = op
                if k not in model[c]:
                    continue
                state.delete(c, k)
                del model[c][k]
            elif kind == "snapshot":
                taken.append((state.snapshot(), copy.deepcopy(state.data)))
            elif taken:
                snap, at = taken[op[1] % len(taken)]
                if kind == "restore":
                    assert state.changed_since(snap) == reference_diff(at, state.data)
                    state.restore(snap)
                else:  # a plain dict (JSON, another state's data) restores too
                    state.restore(copy.deepcopy(at))
                model = copy.deepcopy(at)
            assert _ordered(state.data) == _ordered(model)
            assert state.hash() == state_hash(model)
            _consistent(state)
            # Whole-collection CEL reads follow writes and restores (and keep the order).
            assert listing.eval(state.cel_context()) == list(model["items"])
        for snap, at in taken:  # every snapshot still reads as its copy, in order
            assert snap == at and at == snap
            assert [(c, list(snap[c].items())) for c in snap] == _ordered(at)
            assert _ordered(snap.to_dict()) == _ordered(at)
            for c in COLLECTIONS:
                for k in KEYS:
                    assert snap[c].get(k) == at[c].get(k) and (k in snap[c]) == (k in at[c])
                assert len(snap[c]) == len(at[c])
            assert state_hash(snap.to_dict()) == state_hash(at)
            # Restoring it into another state of the same seed, or from a pickle, gives it too.
            other = State(_seeded() if rebase_early else seeded)
            other.restore(pickle.loads(pickle.dumps(snap)))
            assert _ordered(other.data) == _ordered(at)
            _consistent(other)
            assert _ordered(State(snap).data) == _ordered(at)
        assert seeded == pristine  # the bases were never written


def test_snapshot_shares_the_bases_and_restore_patches_in_place():
    from toolzoo.tools.zoo import get_domain

    d = get_domain("retail_orders")
    state = seed_state(d.spec, 0)
    base = state.data["orders"]
    snap = state.snapshot()
    assert snap._base["orders"] is base and not snap._changes  # nothing copied
    order = next(iter(base))
    state.set_field("orders", order, "status", "cancelled")
    live = state.data["orders"]
    assert live is not base and base[order]["status"] != "cancelled"  # copy-on-write
    after = state.snapshot()
    assert after._changes == {"orders": {order: live[order]}}  # the change alone
    state.restore(snap)
    assert state.data["orders"] is live and state.data == seed_state(d.spec, 0).data  # in place
    state.restore(after)
    assert state.data["orders"][order]["status"] == "cancelled"
    assert state.changed_since(snap) == {"orders": [order]}


def test_a_deleted_base_record_comes_back_in_its_place():
    state = State({"c": {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}}})
    state.set_field("c", "c", "v", 30)
    snap = state.snapshot()
    state.delete("c", "a")
    state.put("c", "a", {"v": 9})  # back, but last
    assert list(state.data["c"]) == ["b", "c", "a"]
    state.restore(snap)
    assert list(state.data["c"].items()) == [("a", {"v": 1}), ("b", {"v": 2}), ("c", {"v": 30})]
    state.delete("c", "b")
    gone = state.snapshot()
    assert "b" not in gone["c"] and gone["c"].get("b") is None and list(gone["c"]) == ["a", "c"]
    with pytest.raises(KeyError):
        gone["c"]["b"]
    assert repr(DELETED) == "DELETED" and pickle.loads(pickle.dumps(DELETED)) is DELETED


def test_same_values_in_another_order_are_restored_in_order():
    state = State({"c": {"a": {"v": 1}, "b": {"v": 2}}})
    state.put("c", "a", {"v": 5})  # in place
    snap = state.snapshot()
    state.delete("c", "a")
    state.put("c", "a", {"v": 5})  # the same value, now last
    assert state._changes == snap._changes and list(state.data["c"]) == ["b", "a"]
    state.restore(snap)
    assert list(state.data["c"]) == ["a", "b"]


def test_changes_stay_bounded_by_a_quarter_of_the_collection():
    n = 1000
    state = State({"c": {f"k{i}": {"v": i} for i in range(n)}})
    first = state.snapshot()
    for i in range(n):
        state.set_field("c", f"k{i}", "v", -i)
        assert len(state._changes["c"]) <= 64 + n // 4
    assert state.snapshot()._base["c"] is not first._base["c"]  # rebased along the way
    state.restore(first)  # an older base: rebuilt from it
    assert state.data == first.to_dict() and state.data["c"]["k7"] == {"v": 7}
