"""Nested path writes: ``orders[o].items[i].price``, copy-on-write and schema-aware.

A path is ``collection[CEL key]`` followed by any of ``.field`` and ``[CEL]`` (an int index into
a list, a text key into a map). Parsing and the schema walk happen at load; at run time the
bracket expressions are evaluated to a list of concrete steps and :func:`apply` builds the new
record. Records are never changed in place (snapshots share them), so ``apply`` copies exactly
the containers along the path and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PathError(Exception):
    """A path that does not parse (load) or does not lead anywhere (run time)."""


@dataclass(frozen=True)
class Step:
    """``.field`` (``field`` set) or ``[CEL]`` (``index`` holds the CEL text, ``offset`` its
    position in the path text, for load-time messages)."""

    field: str | None = None
    index: str | None = None
    offset: int = 0

    def text(self) -> str:
        return f".{self.field}" if self.field is not None else f"[{self.index}]"


@dataclass(frozen=True)
class ParsedPath:
    source: str
    collection: str
    key: str  # CEL text of the record key
    steps: tuple[Step, ...]


def _bracket(text: str, start: int) -> int:
    """Index just past the ``]`` matching ``text[start] == '['`` (strings and nesting respected)."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                if ch != "]":
                    break
                return i + 1
        i += 1
    raise PathError(f"unclosed '[' at position {start} in path {text!r}")


def parse(source: str) -> ParsedPath:
    """``users[u].payment_methods[pm].balance`` -> collection, key CEL and steps."""
    if not isinstance(source, str):
        raise PathError(f"a path is text, got {type(source).__name__}")
    text = source.strip()
    m = _IDENT.match(text)
    if not m or m.end() >= len(text) or text[m.end()] != "[":
        raise PathError(f"a path starts with collection[key], got {source!r}")
    collection, i = m.group(), m.end()
    end = _bracket(text, i)
    key = text[i + 1 : end - 1].strip()
    if not key:
        raise PathError(f"empty record key in path {source!r}")
    steps: list[Step] = []
    i = end
    while i < len(text):
        if text[i] == ".":
            m = _IDENT.match(text, i + 1)
            if not m:
                raise PathError(f"expected a field name after '.' at position {i} in path {source!r}")
            steps.append(Step(field=m.group(), offset=i + 1))
            i = m.end()
        elif text[i] == "[":
            end = _bracket(text, i)
            inner = text[i + 1 : end - 1].strip()
            if not inner:
                raise PathError(f"empty [] at position {i} in path {source!r}")
            steps.append(Step(index=inner, offset=i + 1))
            i = end
        elif text[i].isspace():
            i += 1
        else:
            raise PathError(f"unexpected {text[i]!r} at position {i} in path {source!r} (use .field or [CEL])")
    return ParsedPath(source, collection, key, tuple(steps))


# -- schema walk (load time) ---------------------------------------------------------------

def child_schema(schema: Any, step: Step) -> tuple[Any, str | None]:
    """The schema one step down, or (None, problem). ``{}``/None means "unknown: stop checking"."""
    if not isinstance(schema, dict) or not schema:
        return {}, None
    types = schema.get("type")
    types = set(types) if isinstance(types, list) else {types} if types else set()
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else None
    extra = schema.get("additionalProperties")
    if types and types <= {"string", "number", "integer", "boolean", "null"}:
        return None, f"{step.text()}: a {'/'.join(sorted(types))} has no {'fields' if step.field else 'elements'}"
    if step.field is not None:
        if "array" in types and "object" not in types:
            return None, f"{step.text()}: a list has no fields (use [index])"
        if props is not None and step.field in props:
            return props[step.field], None
        if isinstance(extra, dict):
            return extra, None
        if props is not None and props:
            return None, f"unknown field {step.field!r} (fields: {', '.join(props)})"
        return {}, None
    # [CEL]: a list element or a map entry
    if "array" in types or "items" in schema:
        return schema.get("items", {}), None
    if isinstance(extra, dict):
        return extra, None
    literal = re.fullmatch(r"""\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*""", step.index or "")
    if literal and props:  # obj['field'] is obj.field
        return child_schema(schema, Step(field=literal.group(1) if literal.group(1) is not None else literal.group(2)))
    return {}, None  # a computed key into an object: any of its fields


def is_kind(schema: Any, kind: str) -> bool | None:
    """Does the schema say list ("array") / map ("object")? None when it does not tell."""
    if not isinstance(schema, dict) or "type" not in schema:
        return None
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return kind in types


# -- run time ------------------------------------------------------------------------------



def describe(collection: str, key: str, steps: list[Any]) -> str:
    out = f"{collection}[{key!r}]"
    for s in steps:
        out += f"[{s!r}]" if isinstance(s, (int, bool)) or not isinstance(s, str) else f".{s}" if _IDENT.fullmatch(s) else f"[{s!r}]"
    return out


def _child(node: Any, step: Any, where: Callable[[], str]) -> Any:
    if isinstance(node, dict):
        if not isinstance(step, str):
            raise PathError(f"{where()}: a map key must be text, got {type(step).__name__}")
        if step not in node:
            raise PathError(f"{where()}: no entry {step!r}")
        return node[step]
    if isinstance(node, list):
        return node[_index(node, step, where)]
    raise PathError(f"{where()}: cannot step into a {type(node).__name__}")


def _index(node: list, step: Any, where: Callable[[], str]) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        raise PathError(f"{where()}: a list index must be an integer, got {type(step).__name__}")
    if not 0 <= step < len(node):
        raise PathError(f"{where()}: index {step} out of range ({len(node)} elements)")
    return step


def get(root: Any, steps: list[Any], where: Callable[[], str]) -> Any:
    node = root
    for s in steps:
        node = _child(node, s, where)
    return node


def apply(root: Any, steps: list[Any], op: str, value: Any = None, where: Callable[[], str] = lambda: "path") -> Any:
    """A new ``root`` with ``op`` applied at ``steps``; ``root`` itself is left untouched.

    ``set``: the last step's slot becomes ``value`` (a new map entry or field is fine; a list
    index must exist). ``remove``: the slot is deleted (a list element shifts the rest).
    ``append``: the slot holds a list (or nothing yet) and gains ``value`` at the end.
    """
    if not steps:
        raise PathError(f"{where()}: empty path")
    head, last = steps[:-1], steps[-1]
    return _rebuild(root, head, lambda parent: _at_last(parent, last, op, value, where), where)


def _rebuild(node: Any, steps: list[Any], change: Callable[[Any], Any], where: Callable[[], str]) -> Any:
    if not steps:
        return change(node)
    s, rest = steps[0], steps[1:]
    child = _child(node, s, where)
    new_child = _rebuild(child, rest, change, where)
    if isinstance(node, dict):
        out = dict(node)
        out[s] = new_child
        return out
    out = list(node)
    out[s] = new_child
    return out


def _at_last(parent: Any, last: Any, op: str, value: Any, where: Callable[[], str]) -> Any:
    if isinstance(parent, dict):
        if not isinstance(last, str):
            raise PathError(f"{where()}: a map key must be text, got {type(last).__name__}")
        out = dict(parent)
        if op == "set":
            out[last] = value
        elif op == "remove":
            if last not in out:
                raise PathError(f"{where()}: no entry {last!r} to remove")
            del out[last]
        elif op == "append":
            current = out.get(last, [])
            if not isinstance(current, list):
                raise PathError(f"{where()}: append needs a list, found a {type(current).__name__}")
            out[last] = [*current, value]
        return out
    if isinstance(parent, list):
        i = _index(parent, last, where)
        out = list(parent)
        if op == "set":
            out[i] = value
        elif op == "remove":
            del out[i]
        elif op == "append":
            if not isinstance(out[i], list):
                raise PathError(f"{where()}: append needs a list, found a {type(out[i]).__name__}")
            out[i] = [*out[i], value]
        return out
    raise PathError(f"{where()}: cannot step into a {type(parent).__name__}")
