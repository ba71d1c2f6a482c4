"""Domain-level ``defs:``: named CEL expressions with parameters, expanded at compile time.

``defs: {item_price(p, i): "state.products[p].variants[i].price"}`` makes
``item_price(args.pid, args.iid)`` mean ``(state.products[(args.pid)].variants[(args.iid)].price)``.
Expansion is textual over CEL tokens (string literals and field selections are left alone),
so an expanded expression costs nothing extra at run time. A def that (directly or through
others) calls itself is a load error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"""(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<sp>\s+)|(?P<other>.)""", re.S)
_HEAD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*([^)]*)\))?\s*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_EXPANSION = 200_000  # characters: a guard against exponential (but finite) nesting


class DefError(Exception):
    pass


@dataclass(frozen=True)
class Def:
    name: str
    params: tuple[str, ...]
    body: str


def parse_defs(raw: dict[str, Any]) -> tuple[dict[str, Def], list[tuple[str, str]]]:
    """{"name(a, b)": expr} / {"name": {params, expr}} -> defs, plus (key, problem) pairs."""
    defs: dict[str, Def] = {}
    problems: list[tuple[str, str]] = []
    for key, value in raw.items():
        m = _HEAD.match(str(key))
        if not m:
            problems.append((key, f"a def is named `name` or `name(param, ...)`, got {key!r}"))
            continue
        name, inline = m.group(1), m.group(2)
        if isinstance(value, str):
            params = [p.strip() for p in inline.split(",")] if inline and inline.strip() else []
            body = value
        else:  # DefSpec
            if inline is not None:
                problems.append((key, "give the parameters either in the name or as `params`, not both"))
            params, body = list(value.params), value.expr
        bad = [p for p in params if not _NAME.match(p)]
        if bad:
            problems.append((key, f"parameter names must be identifiers, got {bad}"))
            continue
        if len(set(params)) != len(params):
            problems.append((key, f"duplicate parameter names in {params}"))
            continue
        if name in defs:
            problems.append((key, f"duplicate def {name!r}"))
            continue
        if name in ("state", "args", "prev"):
            problems.append((key, f"{name!r} is reserved"))
            continue
        defs[name] = Def(name, tuple(params), body)
    return defs, problems


def _tokens(text: str) -> list[tuple[str, str]]:
    return [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]


def _prev_sig(tokens: list[tuple[str, str]], i: int) -> str:
    j = i - 1
    while j >= 0 and tokens[j][0] == "sp":
        j -= 1
    return tokens[j][1] if j >= 0 else ""


def _next_sig(tokens: list[tuple[str, str]], i: int) -> int:
    j = i + 1
    while j < len(tokens) and tokens[j][0] == "sp":
        j += 1
    return j


def _call_args(tokens: list[tuple[str, str]], open_at: int) -> tuple[list[str], int]:
    """Arguments of a call whose '(' is tokens[open_at]; returns (args text, index after ')')."""
    depth, args, cur = 0, [], []
    for j in range(open_at, len(tokens)):
        kind, text = tokens[j]
        if kind == "other" and text in "([{":
            depth += 1
            if depth == 1:
                continue
        elif kind == "other" and text in ")]}":
            depth -= 1
            if depth == 0:
                arg = "".join(cur).strip()
                if arg or args:
                    args.append(arg)
                return args, j + 1
        elif kind == "other" and text == "," and depth == 1:
            args.append("".join(cur).strip())
            cur = []
            continue
        cur.append(text)
    raise DefError("unbalanced parentheses in a def call")


def _substitute(body: str, values: dict[str, str]) -> str:
    if not values:
        return body
    tokens = _tokens(body)
    out = []
    for i, (kind, text) in enumerate(tokens):
        if kind == "id" and text in values and _prev_sig(tokens, i) != ".":
            out.append(f"({values[text]})")
        else:
            out.append(text)
    return "".join(out)


def uses_defs(text: str, defs: dict[str, Def]) -> bool:
    return bool(defs) and any(kind == "id" and t in defs for kind, t in _tokens(text))


def expand(text: str, defs: dict[str, Def], _stack: tuple[str, ...] = ()) -> str:
    """``text`` with every def call replaced by its body (recursively)."""
    if not uses_defs(text, defs):
        return text
    tokens = _tokens(text)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        kind, tok = tokens[i]
        if kind == "id" and tok in defs and _prev_sig(tokens, i) != ".":
            d = defs[tok]
            if tok in _stack:
                raise DefError(f"def {tok!r} is recursive ({' -> '.join((*_stack, tok))})")
            j = _next_sig(tokens, i)
            if j < len(tokens) and tokens[j][1] == "(":
                args, after = _call_args(tokens, j)
            elif not d.params:
                args, after = [], i + 1  # a parameterless def may be used as a bare name
            else:
                raise DefError(f"def {tok!r} takes {len(d.params)} argument(s): {tok}({', '.join(d.params)})")
            if len(args) != len(d.params):
                raise DefError(f"def {tok!r} takes {len(d.params)} argument(s) ({', '.join(d.params) or 'none'}), "
                               f"got {len(args)}")
            args = [expand(a, defs, _stack) for a in args]
            body = expand(d.body, defs, (*_stack, tok))
            out.append("(" + _substitute(body, dict(zip(d.params, args))) + ")")
            if sum(map(len, out)) > MAX_EXPANSION:
                raise DefError(f"expanding def {tok!r} grows past {MAX_EXPANSION} characters")
            i = after
            continue
        out.append(tok)
        i += 1
    return "".join(out)
