"""Given records for ``seed.<collection>``: inline ``records:`` and ``from: data/FILE.json|jsonl``
(relative to the domain file), with ``at:`` a dotted key path into the document.

A JSON document (after ``at``) is either a map ``{key: record}`` (tau2's db.json layout; a
record without its key field gets it from the map key) or a list of records. A ``.jsonl`` file
holds one record per line. Files are read once per (path, modification time). :func:`load_given`
resolves a domain's given records and checks each against its collection schema at load.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from toolzoo.config import Problem, Problems, format_path


class FixtureError(Exception):
    def __init__(self, message: str, file: str, line: int | None = None):
        super().__init__(message)
        self.file, self.line = file, line


@dataclass
class Given:
    record: Any
    label: str  # where it came from, for messages: "users['u1']" / "[3]"
    file: str  # the data file ("" for inline records)
    line: int | None  # jsonl line
    index: int | None = None  # position among inline records
    map_key: str | None = None  # the key in a JSON map document


@lru_cache(maxsize=64)
def _read(path: str, mtime: float) -> Any:
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise FixtureError(f"invalid JSON: {exc.msg}", path, n) from None
        return rows
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, exc.lineno) from None


def read_file(ref: str, base: Path, at: str | None) -> list[Given]:
    path = (base / ref).resolve() if not Path(ref).is_absolute() else Path(ref)
    if path.suffix not in (".json", ".jsonl"):
        raise FixtureError(f"a fixture file is .json or .jsonl, got {ref!r}", str(path))
    try:
        data = _read(str(path), path.stat().st_mtime)
    except OSError as exc:
        raise FixtureError(f"cannot read fixture file: {exc.strerror or exc}", str(path)) from None
    if path.suffix == ".jsonl":
        if at:
            raise FixtureError("`at` needs a .json document (a .jsonl file is a list of records)", str(path))
        return [Given(rec, f"line {n}", str(path), n) for n, rec in data]
    for part in (at.split(".") if at else []):
        if not isinstance(data, dict) or part not in data:
            keys = ", ".join(list(data)[:10]) if isinstance(data, dict) else type(data).__name__
            raise FixtureError(f"`at: {at}`: no key {part!r} (found: {keys})", str(path))
        data = data[part]
    prefix = at or ""
    if isinstance(data, dict):
        return [Given(rec, f"{prefix}[{key!r}]", str(path), None, None, str(key)) for key, rec in data.items()] \
            if all(isinstance(v, dict) for v in data.values()) else _not_records(path, prefix)
    if isinstance(data, list):
        return [Given(rec, f"{prefix}[{i}]", str(path), None) for i, rec in enumerate(data)]
    return _not_records(path, prefix)


def locate(file: str, at: str | None, key: str) -> int | None:
    """The line of ``"key":`` in a JSON document, after the ``at`` keys (for messages only)."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError:
        return None
    pos = 0
    for part in [*(at.split(".") if at else []), key]:
        m = re.compile(r'"' + re.escape(json.dumps(part)[1:-1]) + r'"\s*:').search(text, pos)
        if m is None:
            return None
        pos = m.end()
    return text.count("\n", 0, pos) + 1


def _not_records(path: Path, at: str) -> list[Given]:
    raise FixtureError(f"{'`at: ' + at + '`' if at else 'the document'} must be a map of records or a list of records",
                       str(path))


def load_given(spec: Any, validators: dict[str, Any], problems: Problems, base: Path) -> None:
    """Resolve and check every collection's given records (inline and from data files)."""
    for name, seed in spec.seed.items():
        if name not in spec.state or not seed.given:
            continue
        key_field = spec.state[name].key
        items = [Given(rec, f"records[{i}]", "", None, i) for i, rec in enumerate(seed.records or [])]
        if seed.from_ is not None:
            try:
                items += read_file(seed.from_, base, seed.at)
            except FixtureError as exc:
                problems.items.append(Problem(exc.file, exc.line, format_path(("seed", name, "from")), str(exc)))
                continue
        validator = validators.get(name)
        given: list[dict[str, Any]] = []
        seen: dict[str, str] = {}
        reported = 0
        for g in items:
            def bad(message: str, sub: tuple = ()) -> None:
                if g.file:
                    where = g.label + ("" if not sub else format_path(sub) if isinstance(sub[0], int) else "." + format_path(sub))
                    line = g.line if g.line is not None or g.map_key is None else locate(g.file, seed.at, g.map_key)
                    problems.items.append(Problem(g.file, line, where, f"{message} (seed.{name}.from)"))
                else:
                    problems.add(("seed", name, "records", g.index) + sub, message)

            if reported >= 20:
                break
            record = g.record
            if not isinstance(record, dict):
                bad(f"a record must be a map, got {type(record).__name__}")
                reported += 1
                continue
            if key_field not in record:
                if g.map_key is None:
                    bad(f"record has no key field {key_field!r}")
                    reported += 1
                    continue
                record = {key_field: g.map_key, **record}
            elif g.map_key is not None and str(record[key_field]) != g.map_key:
                bad(f"{key_field} {record[key_field]!r} differs from its map key {g.map_key!r}")
                reported += 1
                continue
            key = str(record[key_field])
            if key in seen:
                bad(f"duplicate key {key!r} (also {seen[key]})")
                reported += 1
                continue
            err = next(iter(validator.iter_errors(record)), None) if validator is not None else None
            if err is not None:
                bad(f"record {key!r} does not match the schema: {err.message}", tuple(err.absolute_path))
                reported += 1
                continue
            seen[key] = g.label
            given.append(record)
        seed._given = given
