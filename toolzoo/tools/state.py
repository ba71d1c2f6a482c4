"""The state store: keyed records per collection, snapshots, canonical hashes, seeding.

Records are never mutated in place (every write replaces the record with a new dict), so a
snapshot is a shallow copy of each collection and stays valid however the state changes later.
"""

from __future__ import annotations

import hashlib
import json
import random
from contextvars import ContextVar
from typing import Any

import orjson

from toolzoo.tools.cel import ContextCache, Env

from toolzoo.tools.cel_lib import FUNCTIONS as CEL_LIBRARY
from toolzoo.tools.spec import DomainSpec, FieldGen

Records = dict[str, dict[str, Any]]
Snapshot = dict[str, Records]


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8: what tool results carry and state hashes are made of.
    orjson writes it ~11x as fast as ``json`` (a read's result was a third of its cost); what
    orjson refuses (non-text keys, integers past 64 bits) takes the ``json`` way."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _json_copy(value: Any) -> Any:
    """``value`` as ``to_json`` hands it back (a fresh JSON round trip; None stays None)."""
    return None if value is None else orjson.loads(canonical_json(value))


def state_hash(data: Snapshot) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:32]


def _sorted(values: Any) -> list[Any]:
    """CEL ``sorted(list)``: map filters come back in hash order, so results are sorted."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=canonical_json)


# The RNG behind ``pick``: set by the task generator while it binds a subtask, unset elsewhere
# (so a tool effect that calls pick fails loudly instead of being silently random).
PICK_RNG: ContextVar[random.Random | None] = ContextVar("toolzoo_pick_rng", default=None)


def _pick(values: Any) -> Any:
    rng = PICK_RNG.get()
    if rng is None:
        raise RuntimeError("pick() is only available in subtask bindings")
    values = _sorted(values)
    # An empty list yields null: the binding is unsatisfiable and the generator moves on
    # (raising here would make the CEL library log a traceback for an ordinary skip).
    return rng.choice(values) if values else None


# Every function an expression may call: the library (cel_lib.py) plus sorted and pick.
CEL_FUNCTIONS = {**CEL_LIBRARY, "sorted": _sorted, "pick": _pick}


class State:
    def __init__(self, collections: Snapshot, keys: dict[str, str] | None = None):
        # Collections are shared with the caller's snapshot until this state first writes one
        # (copy-on-write per collection, as records are per record): an unwritten collection
        # costs nothing per state.
        self._data: Snapshot = dict(collections)
        self._owned: set[str] = set()
        self.keys = keys or {}
        self.version = 0
        self._coll_versions = {name: 0 for name in self._data}
        self._ctx: Any = None

    # -- reads -----------------------------------------------------------------------------
    @property
    def data(self) -> Snapshot:
        """The live collections; treat as read-only (write through set/insert/delete)."""
        return self._data

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        return self._data[collection].get(key)

    def snapshot(self) -> Snapshot:
        return {name: dict(recs) for name, recs in self._data.items()}

    def restore(self, snap: Snapshot) -> None:
        for name, recs in snap.items():
            # Records are shared (copy-on-write), so an unchanged collection compares equal
            # cheaply and keeps its converted CEL value.
            if self._data.get(name) != recs:
                self._touch(name)
            self._data[name] = dict(recs)
            self._owned.add(name)

    def hash(self) -> str:
        return state_hash(self._data)

    def to_json(self) -> Snapshot:
        return orjson.loads(canonical_json(self._data))

    def records_json(self, touched: dict[str, list[str]]) -> Snapshot:
        """``{c: {k: to_json()[c][k]}}`` for the given keys (None: no such record), converting
        only those records: a checkpoint reads a task's few records, not the whole state."""
        data = self._data
        out: Snapshot = {}
        for coll, keys in touched.items():
            records = data.get(coll) or {}
            out[coll] = {k: _json_copy(records.get(k)) for k in keys}
        return out

    # -- writes (copy-on-write records) ----------------------------------------------------
    def set_field(self, collection: str, key: str, field: str, value: Any) -> None:
        record = dict(self._data[collection][key])
        record[field] = value
        self._own(collection)[key] = record
        self._touch(collection)

    def put(self, collection: str, key: str, record: dict[str, Any]) -> None:
        self._own(collection)[key] = dict(record)
        self._touch(collection)

    def delete(self, collection: str, key: str) -> None:
        del self._own(collection)[key]
        self._touch(collection)

    def _own(self, collection: str) -> Records:
        if collection not in self._owned:
            self._data[collection] = dict(self._data[collection])
            self._owned.add(collection)
        return self._data[collection]

    def _touch(self, collection: str) -> None:
        self.version += 1
        self._coll_versions[collection] = self._coll_versions.get(collection, 0) + 1

    # -- CEL --------------------------------------------------------------------------------
    def cel_context(self, **variables: Any) -> Env:
        """An evaluation env: records are read by key straight from the state; a collection an
        expression uses whole is converted once per write of that collection (see cel.py)."""
        if self._ctx is None:
            self._ctx = ContextCache(self._data, self._coll_versions.__getitem__)
        return Env(self._ctx, variables)


def seed_state(spec: DomainSpec, seed: int) -> State:
    """Deterministic initial state: same (domain, seed) -> same state; one RNG per collection.

    A collection holds its given records (fixtures; ``select`` draws a seed-dependent subset
    and order from them), then its generated ones. Given records are shared, not copied:
    records are never changed in place."""
    keys = {name: c.key for name, c in spec.state.items()}
    if (cached := _seeded.get(spec, seed)) is not None:
        return State(cached, keys)  # records shared with every state of this (domain, seed)
    data: Snapshot = {name: {} for name in spec.state}
    for name, seed_spec in spec.seed.items():
        key_field = spec.state[name].key
        for record in _selected(spec.domain, name, seed, seed_spec):
            data[name][str(record[key_field])] = record
        rng = random.Random(f"{spec.domain}:{name}:{seed}")
        given = set(data[name])
        for i in range(seed_spec.count):
            record = {field: generate(gen, i, rng, data) for field, gen in seed_spec.fields.items()}
            key = str(record[key_field])
            if key in given:
                continue  # a given record wins (the loader reports such clashes on seed 0)
            data[name][key] = record
    _seeded.put(spec, seed, data)
    return State(data, keys)


class _SeededCache:
    """Seeded records by (spec, seed), shared by the states made from them (copy-on-write):
    episodes on the same seed skip generation and hold only their own changed records. Small
    states only, and a bounded number of them."""

    MAX_ENTRIES, MAX_RECORDS = 1024, 5000

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], tuple[DomainSpec, Snapshot]] = {}

    def get(self, spec: DomainSpec, seed: int) -> Snapshot | None:
        hit = self._entries.get((id(spec), seed))
        return hit[1] if hit is not None and hit[0] is spec else None  # the spec itself, not a reused id

    def put(self, spec: DomainSpec, seed: int, data: Snapshot) -> None:
        if sum(len(r) for r in data.values()) > self.MAX_RECORDS:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[(id(spec), seed)] = (spec, {name: dict(recs) for name, recs in data.items()})


_seeded = _SeededCache()


def _selected(domain: str, name: str, seed: int, seed_spec: Any) -> list[dict[str, Any]]:
    given = seed_spec._given
    select = seed_spec.select
    if select is None or not given:
        return given
    rng = random.Random(f"{domain}:{name}:{seed}:select")
    n = len(given) if select.count is None else min(select.count, len(given))
    chosen = rng.sample(range(len(given)), n)
    if not select.shuffle:
        chosen.sort()
    return [given[i] for i in chosen]


def generate(gen: FieldGen, i: int, rng: random.Random, data: Snapshot) -> Any:
    if gen.pattern is not None:
        return gen.pattern.format(i=i)
    if gen.choice is not None:
        return rng.choice(gen.choice)
    if gen.int_ is not None:
        return rng.randint(gen.int_[0], gen.int_[1])
    if gen.ref is not None:
        keys = sorted(data[gen.ref])
        return rng.choice(keys) if keys else None
    return gen.value
