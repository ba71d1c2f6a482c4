"""The state store: keyed records per collection, snapshots, canonical hashes, seeding.

Records are never mutated in place (every write replaces the record with a new dict), so states
and snapshots share them. Each collection is kept as

* the live dict that everything reads (``state.data[c]``: a plain dict, in insertion order);
* a *base*: a dict nothing writes any more (the seeded records, shared by every state of that
  seed until a state first writes the collection and takes its own live copy);
* the *changes* since the base: key -> the live record, or :data:`DELETED` for a base record
  deleted; and which changed keys sit after the base's (inserted since the base, or deleted
  and put back), in their order in the changes.

A snapshot keeps the bases by reference and copies the changes: taking one costs O(records
changed since the base), however large the collections. Restoring one that shares this state's
bases rewrites only the keys changed on either side, in the order the snapshot had them; where
that order cannot be had in place (a base record deleted since must go back to its old place
among the others while the snapshot holds other changes of its collection) it rebuilds that
collection with one dict copy, which is what every snapshot and restore used to cost. A plain
dict restores by copying it. When a collection's changes outgrow a quarter of it (and 64), the
live dict becomes the new base (one copy per that many writes), so a snapshot never costs more
than copying about a quarter of the state.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

import orjson

from toolzoo.tools.cel import ContextCache, Env

from toolzoo.tools.cel_lib import FUNCTIONS as CEL_LIBRARY
from toolzoo.tools.spec import DomainSpec, FieldGen

Records = dict[str, dict[str, Any]]
Collections = dict[str, Records]


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8: what tool results carry and state hashes are made of.
    orjson writes it ~11x as fast as ``json`` (a read's result was a third of its cost); what
    orjson refuses (non-text keys, integers past 64 bits) takes the ``json`` way, with NaN and
    infinities written as orjson writes them (``null``): the text of a value must not depend
    on whether some other value in the same state is past 64 bits."""
    return _encode(value)[0]


def _encode(value: Any) -> tuple[str, bool]:
    """``(canonical_json(value), whether orjson wrote it)``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode(), True
    except TypeError:
        return json.dumps(json_finite(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=str), False


def json_finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None, as orjson writes them (JSON has neither). Here
    on ``canonical_json``'s rare path only (orjson does this itself); reports use it too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_finite(v) for v in value]
    return value


def _round_trip(value: Any) -> tuple[Any, str]:
    """``(json_loads(text), text)`` for ``text = canonical_json(value)``. Text orjson wrote holds
    no integer past 64 bits (orjson refuses those) and no NaN: orjson reads it back exactly, so
    the search for long digit runs (4.5x the cost of parsing a whole state) is skipped."""
    text, by_orjson = _encode(value)
    return (orjson.loads(text) if by_orjson else json.loads(text)), text


# A run of 19 ASCII digits: an integer that may be past 64 bits (JSON numbers are ASCII digits
# only; [0-9] is ~1.5x as fast as \d, which also looks for other scripts' digits).
_LONG_DIGITS = re.compile(r"[0-9]{19}").search


def json_loads(text: str) -> Any:
    """JSON text as ``json.loads`` reads it, at orjson's speed where that is the same: orjson
    reads an integer past 64 bits as a float and refuses NaN and Infinity, so text holding a
    run of 19 digits, or text orjson refuses, is read by ``json``."""
    if _LONG_DIGITS(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def state_hash(data: Collections) -> str:
    return text_hash(canonical_json(data))


def text_hash(canonical: str) -> str:
    """``state_hash`` of the state whose ``canonical_json`` is ``canonical``."""
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


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


class _Deleted:
    """The change "this base record was deleted" (one object; pickles as itself)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DELETED"

    def __reduce__(self) -> str:
        return "DELETED"


DELETED: Any = _Deleted()
_ABSENT: Any = object()
_NO_KEYS: frozenset[str] = frozenset()


def _change_limit(base: Records) -> int:
    """How many changed keys a collection holds before its live dict becomes its base."""
    return 64 + len(base) // 4


def _materialize(base: Records, changes: dict[str, Any], tail: Any) -> Records:
    """The collection ``base`` + ``changes`` as a new dict, in the order the state had it: base
    records in base order (those updated in place where they were), then the ``tail``: records
    inserted since the base (base records deleted and put back among them), in the order of
    their (last) insertion, which is their order in ``changes``."""
    out = dict(base)
    for key, value in changes.items():
        if value is DELETED:
            del out[key]
        elif key in tail:
            out.pop(key, None)
        else:
            out[key] = value
    for key, value in changes.items():
        if key in tail:
            out[key] = value
    return out


class _Overlay(Mapping[str, Any]):
    """One changed collection of a :class:`Snapshot`, read-only: its base with the changes on
    top. A read by key is O(1); a whole read (iterating, ``len``, equality) builds the plain
    dict once."""

    __slots__ = ("_base", "_changes", "_tail", "_whole")

    def __init__(self, base: Records, changes: dict[str, Any], tail: frozenset[str]):
        self._base, self._changes, self._tail = base, changes, tail
        self._whole: Records | None = None

    def __getitem__(self, key: str) -> Any:
        value = self._changes.get(key, _ABSENT)
        if value is _ABSENT:
            return self._base[key]
        if value is DELETED:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._changes.get(key, _ABSENT)
        if value is _ABSENT:
            return self._base.get(key, default)
        return default if value is DELETED else value

    def __contains__(self, key: object) -> bool:
        value = self._changes.get(key, _ABSENT)  # type: ignore[call-overload]
        return key in self._base if value is _ABSENT else value is not DELETED

    def _dict(self) -> Records:
        if self._whole is None:
            self._whole = _materialize(self._base, self._changes, self._tail)
        return self._whole

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def keys(self) -> Any:
        return self._dict().keys()

    def items(self) -> Any:
        return self._dict().items()

    def values(self) -> Any:
        return self._dict().values()

    def __eq__(self, other: object) -> bool:
        return self._dict() == (other._dict() if isinstance(other, _Overlay) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._dict())


class Snapshot(Mapping[str, Mapping[str, Any]]):
    """A state as it was when :meth:`State.snapshot` took it; read-only, and unchanged by later
    writes. ``snap[c]`` reads like the collection did then (``get``, ``in``, ``[]``, iteration in
    the same order, equality with a dict); :meth:`to_dict` gives plain dicts (O(records)) where
    JSON is wanted. Records are shared with the state: never change one in place."""

    __slots__ = ("_base", "_changes", "_tail")

    def __init__(self, base: Collections, changes: dict[str, dict[str, Any]], tail: dict[str, frozenset[str]]):
        self._base, self._changes, self._tail = base, changes, tail

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        base = self._base[name]
        changes = self._changes.get(name)
        return _Overlay(base, changes, self._tail.get(name, _NO_KEYS)) if changes else MappingProxyType(base)

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)

    def __contains__(self, name: object) -> bool:
        return name in self._base

    def to_dict(self) -> Collections:
        """The collections as new plain dicts (the records themselves shared)."""
        return {name: _materialize(base, self._changes.get(name, {}), self._tail.get(name, _NO_KEYS))
                for name, base in self._base.items()}

    def __repr__(self) -> str:
        return f"Snapshot({self.to_dict()!r})"


class State:
    def __init__(self, collections: Mapping[str, Records], keys: dict[str, str] | None = None):
        # The given collections become the bases, shared with the caller (and every snapshot)
        # and never written: this state copies a collection on its first write of it (copy-on-
        # write per collection, as records are per record), so an unwritten collection costs
        # nothing per state. The caller must not change them afterwards either.
        if isinstance(collections, Snapshot):  # the snapshot's bases, then its changes
            self.__init__(collections._base, keys)  # type: ignore[misc]
            self.restore(collections)
            return
        self._data: Collections = dict(collections)
        self._base: Collections = dict(collections)
        self._changes: dict[str, dict[str, Any]] = {name: {} for name in self._data}
        # Per collection, the changed keys that sit after the base's: inserted since the base (a
        # base record deleted and put back too), in their order in the changes.
        self._tail: dict[str, set[str]] = {}
        self._limit = {name: _change_limit(recs) for name, recs in self._data.items()}
        self._owned: set[str] = set()  # collections whose live dict is this state's own (not the base)
        self.keys = keys or {}
        self.version = 0
        self._coll_versions = {name: 0 for name in self._data}
        self._ctx: Any = None

    # -- reads -----------------------------------------------------------------------------
    @property
    def data(self) -> Collections:
        """The live collections; treat as read-only (write through set/insert/delete)."""
        return self._data

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        return self._data[collection].get(key)

    def snapshot(self) -> Snapshot:
        """The state as it is now, unchanged by later writes: O(records changed since the base)."""
        return Snapshot(dict(self._base), {name: dict(ch) for name, ch in self._changes.items() if ch},
                        {name: frozenset(m) for name, m in self._tail.items() if m})

    def restore(self, snap: Mapping[str, Mapping[str, Any]]) -> None:
        """Make each collection of ``snap`` what it was there, keys in the same order (the
        others stay). A :class:`Snapshot` sharing this state's base of a collection costs
        O(keys changed on either side); any other costs a copy of that collection."""
        if isinstance(snap, Snapshot):
            for name, base in snap._base.items():
                self._restore_changes(name, base, snap._changes.get(name, {}), snap._tail.get(name, _NO_KEYS))
        else:
            for name, recs in snap.items():
                self._restore_records(name, recs)

    def changed_since(self, snap: Snapshot) -> dict[str, list[str]]:
        """Per collection, the sorted keys whose record now differs from ``snap``'s (changed,
        inserted or deleted): what ``taskgen.diff_keys(snap, state.data)`` gives, in O(keys
        changed) for a collection whose base ``snap`` shares (else O(collection))."""
        out: dict[str, list[str]] = {}
        for name, live in self._data.items():
            before = snap[name]
            if snap._base[name] is self._base.get(name):
                candidates = set(self._changes[name]).union(snap._changes.get(name, ()))
            else:
                candidates = set(before).union(live)
            keys = sorted(k for k in candidates if before.get(k) != live.get(k))
            if keys:
                out[name] = keys
        return out

    def _restore_changes(self, name: str, base: Records, target: dict[str, Any], tail: frozenset[str]) -> None:
        if base is self._base.get(name):
            changes, now_tail = self._changes[name], self._tail.get(name, _NO_KEYS)
            if changes == target and now_tail == tail:
                return  # already there
            if name in self._owned and not _needs_rebuild(base, changes, now_tail, target, tail):
                _patch(self._data[name], base, changes, now_tail, target, tail)
            else:
                self._set_live(name, base, target, tail)
        else:  # another base (another seed's, or this state's before a rebase): the snapshot's
            self._base[name] = base
            self._limit[name] = _change_limit(base)
            self._set_live(name, base, target, tail)
        self._changes[name] = dict(target)
        if tail:
            self._tail[name] = set(tail)
        else:
            self._tail.pop(name, None)
        self._touch(name)

    def _set_live(self, name: str, base: Records, target: dict[str, Any], tail: frozenset[str]) -> None:
        if target:
            self._data[name] = _materialize(base, target, tail)
            self._owned.add(name)
        else:  # the base itself, shared until the next write
            self._data[name] = base
            self._owned.discard(name)

    def _restore_records(self, name: str, recs: Mapping[str, Any]) -> None:
        """A plain collection (JSON, another state's data): a private copy becomes the base."""
        new = dict(recs)
        # Records are shared (copy-on-write), so an unchanged collection compares equal
        # cheaply and keeps its converted CEL value (the same records in another order are a
        # change: listings follow the order).
        old = self._data.get(name)
        if old != new or list(old) != list(new):
            self._touch(name)
        self._data[name] = self._base[name] = new
        self._owned.discard(name)
        self._changes[name] = {}
        self._tail.pop(name, None)
        self._limit[name] = _change_limit(new)

    def hash(self) -> str:
        return state_hash(self._data)

    def to_json(self) -> Collections:
        return _round_trip(self._data)[0]

    def hashed_json(self) -> tuple[Collections, str]:
        """``(to_json(), hash())`` with one encoding of the state (what an episode's end reads)."""
        value, text = _round_trip(self._data)
        return value, text_hash(text)

    def records_json(self, touched: dict[str, list[str]]) -> Collections:
        """``{c: {k: to_json()[c][k]}}`` for the given keys (None: no such record), converting
        only those records: a checkpoint reads a task's few records, not the whole state."""
        data = self._data
        picked = {coll: {k: (data.get(coll) or {}).get(k) for k in keys} for coll, keys in touched.items()}
        return _round_trip(picked)[0]  # one round trip for all of them

    # -- writes (copy-on-write records) ----------------------------------------------------
    def set_field(self, collection: str, key: str, field: str, value: Any) -> None:
        # The commonest write, on the hot path: _own, _changed and _touch written out.
        live = self._data[collection]
        record = dict(live[key])
        record[field] = value
        if collection not in self._owned:
            live = self._own(collection)
        live[key] = record  # in place: the key keeps its position
        changes = self._changes[collection]
        changes[key] = record
        if len(changes) > self._limit[collection]:
            self._rebase(collection)
        self.version += 1
        versions = self._coll_versions
        versions[collection] = versions.get(collection, 0) + 1

    def put(self, collection: str, key: str, record: dict[str, Any]) -> None:
        live = self._own(collection)
        if key not in live:  # an insert goes last, a base record put back after a delete too
            self._changes[collection].pop(key, None)  # (re)entered last in the changes as well
            self._tail.setdefault(collection, set()).add(key)
        live[key] = record = dict(record)
        self._changed(collection, key, record)

    def delete(self, collection: str, key: str) -> None:
        del self._own(collection)[key]
        if (tail := self._tail.get(collection)) is not None:
            tail.discard(key)
        if key in self._base[collection]:
            self._changed(collection, key, DELETED)
        else:  # inserted since the base: no longer a change
            self._changes[collection].pop(key, None)
            self._touch(collection)

    def _changed(self, collection: str, key: str, value: Any) -> None:
        changes = self._changes[collection]
        changes[key] = value
        if len(changes) > self._limit[collection]:
            self._rebase(collection)
        self.version += 1  # _touch, written out
        versions = self._coll_versions
        versions[collection] = versions.get(collection, 0) + 1

    def _rebase(self, collection: str) -> None:
        """The live collection becomes the base (one copy, after a quarter of it changed):
        snapshots stay O(changes). Older snapshots keep the old base and stay valid."""
        base = self._base[collection] = dict(self._data[collection])
        self._changes[collection] = {}
        self._tail.pop(collection, None)
        self._limit[collection] = _change_limit(base)

    def _own(self, collection: str) -> Records:
        if collection not in self._owned:  # the live dict is the base: take a copy to write
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


def _needs_rebuild(base: Records, changes: dict[str, Any], now_tail: Any, target: dict[str, Any], tail: Any) -> bool:
    """Whether restoring ``target`` must put a base key back in its base place, which a dict
    cannot do in place: one deleted now, or put back last, that the target has where the base
    had it."""
    for key, value in changes.items():
        if value is DELETED or (key in now_tail and key in base):
            want = target.get(key, _ABSENT)
            if want is _ABSENT or (want is not DELETED and key not in tail):
                return True
    return False


def _patch(live: Records, base: Records, changes: dict[str, Any], now_tail: Any,
           target: dict[str, Any], tail: Any) -> None:
    """Turn ``live`` (``base`` + ``changes``) into ``base`` + ``target`` in place, where
    :func:`_needs_rebuild` says it can be: O(len(changes) + len(target)), and only keys whose
    record differs, plus the tails, are written."""
    for key, value in changes.items():  # back to the base
        if key in now_tail:
            del live[key]
        elif value is not DELETED and (target.get(key, _ABSENT) is not value or key in tail):
            live[key] = base[key]  # in place (a key the target has the same in place stays)
    for key, value in target.items():
        if key in tail:  # after the base's keys, in the target's order
            live.pop(key, None)
            live[key] = value
        elif value is DELETED:
            if changes.get(key) is not DELETED:
                live.pop(key, None)  # (gone already if it was in the tail)
        elif changes.get(key, _ABSENT) is not value:
            live[key] = value  # in place: present in its base place (else _needs_rebuild)


def seed_state(spec: DomainSpec, seed: int) -> State:
    """Deterministic initial state: same (domain, seed) -> same state; one RNG per collection.

    A collection holds its given records (fixtures; ``select`` draws a seed-dependent subset
    and order from them), then its generated ones. Given records are shared, not copied:
    records are never changed in place."""
    keys = {name: c.key for name, c in spec.state.items()}
    if (cached := _seeded.get(spec, seed)) is not None:
        return State(cached, keys)  # records shared with every state of this (domain, seed)
    data: Collections = {name: {} for name in spec.state}
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
        self._entries: dict[tuple[int, int], tuple[DomainSpec, Collections]] = {}

    def get(self, spec: DomainSpec, seed: int) -> Collections | None:
        hit = self._entries.get((id(spec), seed))
        return hit[1] if hit is not None and hit[0] is spec else None  # the spec itself, not a reused id

    def put(self, spec: DomainSpec, seed: int, data: Collections) -> None:
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


def generate(gen: FieldGen, i: int, rng: random.Random, data: Collections) -> Any:
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
