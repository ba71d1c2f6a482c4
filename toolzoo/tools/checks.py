"""Load-time checks of CEL expressions against the domain: names in scope, known functions, and
every field path (``state.orders[o].items[0].price``, ``args.address.city``, ``order.items``)
walked through the JSON Schemas (objects, maps via additionalProperties, lists via items).

Paths are found on CEL's tokens: a root name followed by any ``.field`` / ``[...]`` chain;
``.name(`` is a method call and ends the chain. A name bound by a macro (``map(i, ...)``) is
typed as an element of the list (or a key of the map) it ranges over, when that is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel

from toolzoo.tools import paths

_TOKEN = re.compile(r"""(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<num>\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<sp>\s+)|(?P<other>.)""", re.S)
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_INTERNAL = re.compile(r"^(_|@|!_|-_)")
UNKNOWN: dict[str, Any] = {}  # a schema that says nothing: stop checking there


@dataclass
class Finding:
    offset: int  # character offset in the expression text
    message: str


def collection_map(record_schema: Any) -> dict[str, Any]:
    """The schema of ``state.<collection>``: a map of records."""
    return {"type": "object", "additionalProperties": record_schema if isinstance(record_schema, dict) else {}}


def references(text: str) -> tuple[set[str], set[str]]:
    """(free variable names, function names) of an expression that compiles."""
    refs = cel.compile(text).references()
    bound = set(_MACRO_VAR.findall(text))
    return set(refs["variables"]) - bound, {f for f in refs["functions"] if not _INTERNAL.match(f)}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    return [(m.lastgroup, m.group(), m.start()) for m in _TOKEN.finditer(text) if m.lastgroup != "sp"]


def _close(tokens: list[tuple[str, str, int]], i: int) -> int:
    """Index of the token closing the bracket at ``tokens[i]``."""
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j][1] if tokens[j][0] == "other" else ""
        if t in ("(", "[", "{"):
            depth += 1
        elif t in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def walk(text: str, roots: dict[str, Any], skip_first: frozenset[str] = frozenset()) -> tuple[list[Finding], Any]:
    """Check every path in ``text`` whose root is in ``roots`` (name -> schema). Returns the
    findings, and the schema of the whole expression when it is one single path (else None).
    ``skip_first``: roots whose first field is checked elsewhere (``args``)."""
    tokens = _tokens(text)
    findings: list[Finding] = []
    scopes: list[dict[str, Any]] = [dict(roots)]
    whole: Any = None
    i = 0
    while i < len(tokens):
        kind, tok, _ = tokens[i]
        prev = tokens[i - 1][1] if i else ""
        if kind == "id" and prev != "." and tok in scopes[-1]:
            schema, j, first = scopes[-1][tok], i + 1, True
            if tok == "state":
                # state.<collection> is checked elsewhere (unknown collection); start below it.
                if j + 1 < len(tokens) and tokens[j][1] == "." and tokens[j + 1][1] in schema.get("properties", {}):
                    schema, j, first = schema["properties"][tokens[j + 1][1]], j + 2, False
                else:
                    i += 1
                    continue
            while j < len(tokens) and schema is not None:
                t = tokens[j][1]
                if t == "." and j + 1 < len(tokens) and tokens[j + 1][0] == "id":
                    name, after = tokens[j + 1][1], tokens[j + 2][1] if j + 2 < len(tokens) else ""
                    if after == "(":
                        if name in _MACROS and j + 3 < len(tokens) and tokens[j + 3][0] == "id":
                            _bind_macro(tokens, j, schema, scopes)
                        break
                    if not (first and tok in skip_first):
                        child, problem = paths.child_schema(schema, paths.Step(field=name))
                        if problem:
                            findings.append(Finding(tokens[j + 1][2], f"{_chain(tokens, i, j + 2)}: {problem}"))
                            schema = None
                            break
                        schema = child
                    else:
                        schema = (schema.get("properties") or {}).get(name, UNKNOWN)
                    first, j = False, j + 2
                elif t == "[":
                    end = _close(tokens, j)
                    child, problem = paths.child_schema(schema, paths.Step(index=_chain(tokens, j + 1, end)))
                    if problem:
                        findings.append(Finding(tokens[j][2], f"{_chain(tokens, i, end + 1)}: {problem}"))
                        schema = None
                        break
                    # the index expression itself is scanned by the main loop
                    schema, first, j = child, False, end + 1
                else:
                    break
            if i == 0 and j >= len(tokens) and schema is not None:
                whole = schema
            if schema:
                problem = _comparison_problem(tokens, j, schema)
                if problem:
                    findings.append(Finding(tokens[i][2], f"{_chain(tokens, i, j)} {problem}"))
            i += 1
            continue
        if kind == "other" and tok == ")" and len(scopes) > 1 and scopes[-1].get("__close__") == i:
            scopes.pop()
        i += 1
    return findings, whole


def _bind_macro(tokens: list, j: int, schema: Any, scopes: list[dict[str, Any]]) -> None:
    """``X.map(v, ...)``: inside the parentheses ``v`` is an element of X (a key if X is a map)."""
    var = tokens[j + 3][1]
    if paths.is_kind(schema, "array") or "items" in (schema or {}):
        element = schema.get("items", UNKNOWN)
    elif isinstance(schema, dict) and (paths.is_kind(schema, "object") or "additionalProperties" in schema):
        element = {"type": "string"}
    else:
        element = UNKNOWN
    scope = dict(scopes[-1])
    scope[var] = element
    scope["__close__"] = _close(tokens, j + 2)
    scopes.append(scope)


def _chain(tokens: list, start: int, end: int) -> str:
    return "".join(t[1] for t in tokens[start:end])


_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _comparison_problem(tokens: list, j: int, schema: dict[str, Any]) -> str | None:
    """``path == literal`` that can never hold: a value outside the field's ``enum``, or a
    literal of another type than the field's (CEL does not compare across types)."""
    if j + 2 >= len(tokens) or tokens[j][1] + tokens[j + 1][1] not in ("==", "!="):
        return None
    kind, text, _ = tokens[j + 2]
    if kind == "str" and "\\" not in text:
        value: Any = text[1:-1]
    elif kind == "num":
        value = float(text) if "." in text else int(text)
    elif kind == "id" and text in ("true", "false"):
        value = text == "true"
    else:
        return None
    if j + 3 < len(tokens) and tokens[j + 3][1] in (".", "[", "(", "+", "-", "*", "/", "%"):
        return None  # the literal is part of a larger expression
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return f"is compared with {text}, which it never holds (enum: {', '.join(map(repr, enum))})"
    declared = schema.get("type")
    if isinstance(declared, str) and declared in ("string", "integer", "number", "boolean"):
        got = _TYPES[type(value)]
        compatible = got == declared or (declared == "number" and got == "integer") or (declared == "integer" and got == "number")
        if not compatible:
            article = "an" if declared[0] in "aeiou" else "a"
            return f"is {article} {declared} but is compared with the {got} {text}"
    return None
