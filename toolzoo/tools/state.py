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

from toolzoo.tools.cel import Env, new_context

from toolzoo.tools.spec import DomainSpec, FieldGen

Records = dict[str, dict[str, Any]]
Snapshot = dict[str, Records]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


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


CEL_FUNCTIONS = {"sorted": _sorted, "pick": _pick}


class State:
    def __init__(self, collections: Snapshot, keys: dict[str, str] | None = None):
        self._data: Snapshot = {name: dict(recs) for name, recs in collections.items()}
        self.keys = keys or {}
        self.version = 0
        self._coll_versions = {name: 0 for name in self._data}
        self._ctx: Any = None
        self._synced: dict[str, int] = {}  # collection -> version the context holds

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

    def hash(self) -> str:
        return state_hash(self._data)

    def to_json(self) -> Snapshot:
        return json.loads(canonical_json(self._data))

    # -- writes (copy-on-write records) ----------------------------------------------------
    def set_field(self, collection: str, key: str, field: str, value: Any) -> None:
        record = dict(self._data[collection][key])
        record[field] = value
        self._data[collection][key] = record
        self._touch(collection)

    def put(self, collection: str, key: str, record: dict[str, Any]) -> None:
        self._data[collection][key] = dict(record)
        self._touch(collection)

    def delete(self, collection: str, key: str) -> None:
        del self._data[collection][key]
        self._touch(collection)

    def _touch(self, collection: str) -> None:
        self.version += 1
        self._coll_versions[collection] = self._coll_versions.get(collection, 0) + 1

    # -- CEL --------------------------------------------------------------------------------
    def cel_context(self, **variables: Any) -> Env:
        """An evaluation env: the state registered on a cached context (converted once per
        state version), and ``variables`` for every other free name."""
        if self._ctx is None:
            self._ctx = new_context(CEL_FUNCTIONS)
        for name, records in self._data.items():
            # Only collections written since the last sync are converted again.
            if self._synced.get(name) != self._coll_versions[name]:
                self._ctx.add_variable(f"state__{name}", records)  # top-level: not copied on access
                self._synced[name] = self._coll_versions[name]
        return Env(self._ctx, variables)


def seed_state(spec: DomainSpec, seed: int) -> State:
    """Deterministic initial state: same (domain, seed) -> same state; one RNG per collection."""
    data: Snapshot = {name: {} for name in spec.state}
    for name, seed_spec in spec.seed.items():
        rng = random.Random(f"{spec.domain}:{name}:{seed}")
        key_field = spec.state[name].key
        for i in range(seed_spec.count):
            record = {field: generate(gen, i, rng, data) for field, gen in seed_spec.fields.items()}
            data[name][str(record[key_field])] = record
    return State(data, {name: c.key for name, c in spec.state.items()})


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
