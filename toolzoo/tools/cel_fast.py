"""Precompiled Python accessors for CEL expressions of simple shapes.

A tool's requires, values and returns are mostly field reads glued together: ``state.c[args.id].f
== 'placed'``, ``state.c[k].credit + state.o[args.id].total``, ``{'order_id': args.order_id,
'status': 'shipped'}``. Entering the CEL interpreter for those costs a program execution plus a
Python->CEL->Python conversion of every value read (several microseconds); walking the same
reads in Python costs a fraction of it. :func:`compile_accessor` recognises, at load time, an
expression built only of

* literals: text without escapes (``'a'``, ``"a"``), integers of up to 15 digits (optionally
  negated), ``true``, ``false``, ``null``;
* reads: a free name with its field chain (``args.x.y``, a ``let`` name), and
  ``state.<c>[<accepted>]`` with a field chain (the key itself may be any accepted expression);
* map literals with distinct text-literal keys, and list literals, of accepted values;
* ``key in state.<c>``; ``!``, ``&&``, ``||`` on booleans; ``==`` / ``!=`` on two values of
  the same type (text, int, bool, double); ``<``, ``<=``, ``>``, ``>=`` on two ints or two
  texts; ``+`` on two ints, doubles or texts; ``-`` and ``*`` on two ints or two doubles;
  parentheses,

and turns it into a tree of Python closures. At run time an accessor answers only where CEL's
answer is certain; anything else — a missing name, record or field, a value of another type,
an int result outside 64 bits, text CEL cannot carry (lone surrogates), a map key that is not
text, a tuple — makes it return :data:`SLOW`, and the expression is evaluated by CEL as before,
so every error (and every unusual value) is exactly CEL's. Property-tested against CEL in
``tests/tools/test_cel_fast.py``.

Maps CEL hands back are in its hash order (random per process); ``Expr.eval`` puts their keys
in sorted order, and an accessor builds its maps in that order too, so a value's key order does
not depend on the run nor on which path answered.
"""

from __future__ import annotations

import re
from typing import Any, Callable

SLOW: Any = object()  # "ask CEL": the accessor cannot be sure of CEL's answer

_INT64 = (-(2**63), 2**63)
_RESERVED = {"as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
             "package", "namespace", "return", "var", "void", "while", "in", "state", "true", "false", "null"}
_TOKENS = re.compile(r"""\s*(?:(?P<str>'[^'\\\n]*'|"[^"\\\n]*")|(?P<num>[0-9]{1,15}(?![0-9A-Za-z_.]))|"""
                     r"""(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>==|!=|<=|>=|&&|\|\||[-+*!<>()\[\]{},:.]))""")
_END = re.compile(r"\s*")

Fn = Callable[[dict[str, Any], dict[str, Any]], Any]  # (variables, state data) -> value or SLOW


class _Reject(Exception):
    """Not a shape the accessors cover: the expression stays with CEL alone."""


class Accessor:
    """A compiled simple-shape expression: ``run(env)`` is its value, as CEL gives it, or SLOW."""

    __slots__ = ("source", "_fn")

    def __init__(self, source: str, fn: Fn):
        self.source, self._fn = source, fn

    def run(self, env: Any) -> Any:
        value = self._fn(env.variables, env.contexts.data)
        if value is SLOW:
            return SLOW
        return cel_value(value)


def _text_ok(s: str) -> bool:
    """Whether CEL can carry this text (Python text may hold lone surrogates, UTF-8 cannot)."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def cel_value(value: Any) -> Any:
    """``value`` as it comes back from a trip through CEL (fresh containers), or SLOW where the
    trip could change or refuse it."""
    kind = type(value)
    if kind is str:
        return value if _text_ok(value) else SLOW
    if kind is bool or kind is float or value is None:
        return value
    if kind is int:
        return value if _INT64[0] <= value < _INT64[1] else SLOW
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str or not _text_ok(k):
                return SLOW
            v = cel_value(v)
            if v is SLOW:
                return SLOW
            out[k] = v
        return out
    if kind is list:
        out_list = []
        for v in value:
            v = cel_value(v)
            if v is SLOW:
                return SLOW
            out_list.append(v)
        return out_list
    return SLOW


def compile_accessor(source: str) -> Accessor | None:
    """The accessor for ``source``, or None when it is not (entirely) a covered shape. The
    caller has already compiled ``source`` with CEL, so only well-formed text arrives here."""
    tokens = []
    pos = 0
    while True:
        m = _TOKENS.match(source, pos)
        if m is None:
            break
        tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    if _END.fullmatch(source, pos) is None:
        return None
    try:
        parser = _Parser(tokens)
        fn = parser.expr()
        if parser.i != len(tokens):
            return None
    except (_Reject, IndexError):
        return None
    return Accessor(source, fn)


class _Parser:
    """Recursive descent over CEL's precedence: ``||`` < ``&&`` < relations < ``+ -`` < ``*`` <
    unary < member < primary. Anything outside the covered shapes raises _Reject."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens, self.i = tokens, 0

    def peek(self) -> str:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else ""

    def take(self, text: str | None = None) -> tuple[str, str]:
        tok = self.tokens[self.i]
        if text is not None and tok[1] != text:
            raise _Reject(text)
        self.i += 1
        return tok

    def expr(self) -> Fn:
        fn = self.and_()
        while self.peek() == "||" and self.tokens[self.i][0] == "op":
            self.take()
            fn = _or(fn, self.and_())
        if self.peek() == "?":
            raise _Reject("?")
        return fn

    def and_(self) -> Fn:
        fn = self.relation()
        while self.peek() == "&&" and self.tokens[self.i][0] == "op":
            self.take()
            fn = _and(fn, self.relation())
        return fn

    def relation(self) -> Fn:
        fn = self.additive()
        while self.i < len(self.tokens):
            kind, op = self.tokens[self.i]
            if kind == "op" and op in _RELATIONS:
                self.take()
                fn = _RELATIONS[op](fn, self.additive())
            elif kind == "id" and op == "in":
                self.take()
                fn = _in(fn, self.collection())
            else:
                break
        return fn

    def collection(self) -> str:
        """``state.<c>`` as the whole right operand of ``in``."""
        if self.take()[1] != "state":
            raise _Reject("in")
        self.take(".")
        kind, name = self.take()
        if kind != "id":
            raise _Reject("in")
        if self.peek() in (".", "[", "(", "+", "-", "*", "/", "%"):  # state.c is not the whole operand
            raise _Reject("in")
        return name

    def additive(self) -> Fn:
        fn = self.multiplicative()
        while self.peek() in ("+", "-") and self.tokens[self.i][0] == "op":
            op = self.take()[1]
            fn = (_add if op == "+" else _sub)(fn, self.multiplicative())
        return fn

    def multiplicative(self) -> Fn:
        fn = self.unary()
        while self.peek() == "*" and self.tokens[self.i][0] == "op":
            self.take()
            fn = _mul(fn, self.unary())
        if self.peek() in ("/", "%"):
            raise _Reject("division")
        return fn

    def unary(self) -> Fn:
        kind, text = self.tokens[self.i]
        if kind == "op" and text == "!":
            self.take()
            return _not(self.unary())
        if kind == "op" and text == "-":
            self.take()
            kind, digits = self.take()
            if kind != "num" or self.peek() in (".", "["):
                raise _Reject("-")
            return _const(-int(digits))
        return self.member()

    def member(self) -> Fn:
        kind, text = self.tokens[self.i]
        if kind == "id" and text == "state":
            return self.state_read()
        if kind == "id" and text not in _RESERVED:
            self.take()
            if self.peek() == "(":
                raise _Reject("call")
            return _name(text, self.fields())
        fn = self.primary()
        if self.peek() in (".", "["):
            raise _Reject("member of a literal")
        return fn

    def fields(self) -> tuple[str, ...]:
        out = []
        while self.peek() == "." and self.tokens[self.i][0] == "op":
            kind, name = self.tokens[self.i + 1]
            if kind != "id":
                raise _Reject("field")
            if self.i + 2 < len(self.tokens) and self.tokens[self.i + 2][1] == "(":
                raise _Reject("method")
            out.append(name)
            self.i += 2
        if self.peek() == "[":
            raise _Reject("index")
        return tuple(out)

    def state_read(self) -> Fn:
        self.take("state")
        self.take(".")
        kind, coll = self.take()
        if kind != "id":
            raise _Reject("state")
        self.take("[")
        key = self.expr()
        self.take("]")
        return _record(coll, key, self.fields())

    def primary(self) -> Fn:
        kind, text = self.take()
        if kind == "str":
            return _const(text[1:-1])
        if kind == "num":
            return _const(int(text))
        if kind == "id":
            if text in ("true", "false", "null"):
                return _const({"true": True, "false": False, "null": None}[text])
            raise _Reject(text)
        if text == "(":
            fn = self.expr()
            self.take(")")
            return fn
        if text == "[":
            items = []
            while self.peek() != "]":
                items.append(self.expr())
                if self.peek() != "]":
                    self.take(",")
                    if self.peek() == "]":
                        raise _Reject("trailing comma")
            self.take("]")
            return _list(tuple(items))
        if text == "{":
            entries: list[tuple[str, Fn]] = []
            while self.peek() != "}":
                kind, key = self.take()
                if kind != "str" or any(k == key[1:-1] for k, _ in entries):
                    raise _Reject("map key")
                self.take(":")
                entries.append((key[1:-1], self.expr()))
                if self.peek() != "}":
                    self.take(",")
                    if self.peek() == "}":
                        raise _Reject("trailing comma")
            self.take("}")
            return _map(tuple(entries))
        raise _Reject(text)


# -- the closures ---------------------------------------------------------------------------------
def _const(value: Any) -> Fn:
    return lambda variables, data: value


def _name(name: str, fields: tuple[str, ...]) -> Fn:
    """A free name's value, as ``_tz`` reads it (a missing field is null)."""
    if not fields:
        return lambda variables, data: variables[name] if name in variables else SLOW
    if len(fields) == 1:
        (f,) = fields

        def one(variables: dict, data: dict) -> Any:
            value = variables.get(name, SLOW)
            if type(value) is not dict:
                return SLOW
            return value.get(f)

        return one

    def chain(variables: dict, data: dict) -> Any:
        value = variables.get(name, SLOW)
        for f in fields:
            if type(value) is not dict:
                return SLOW
            value = value.get(f)
        return value

    return chain


def _record(coll: str, key_fn: Fn, fields: tuple[str, ...]) -> Fn:
    """``state.<coll>[key].f...``, as ``_tzr`` reads it (a missing record or field is CEL's error)."""

    def read(variables: dict, data: dict) -> Any:
        key = key_fn(variables, data)
        if type(key) is not str:
            return SLOW
        records = data.get(coll)
        if records is None:
            return SLOW
        value = records.get(key)
        if value is None:
            return SLOW
        for f in fields:
            if type(value) is not dict or f not in value:
                return SLOW
            value = value[f]
        return value

    return read


def _in(key_fn: Fn, coll: str) -> Fn:
    def contains(variables: dict, data: dict) -> Any:
        key = key_fn(variables, data)
        if type(key) is not str:
            return SLOW
        records = data.get(coll)
        return SLOW if records is None else key in records

    return contains


def _map(entries: tuple[tuple[str, Fn], ...]) -> Fn:
    entries = tuple(sorted(entries, key=lambda e: e[0]))  # the key order CEL's path gives (cel._key_ordered)

    def build(variables: dict, data: dict) -> Any:
        out = {}
        for k, fn in entries:
            v = fn(variables, data)
            if v is SLOW:
                return SLOW
            out[k] = v
        return out

    return build


def _list(items: tuple[Fn, ...]) -> Fn:
    def build(variables: dict, data: dict) -> Any:
        out = []
        for fn in items:
            v = fn(variables, data)
            if v is SLOW:
                return SLOW
            out.append(v)
        return out

    return build


def _not(fn: Fn) -> Fn:
    def negate(variables: dict, data: dict) -> Any:
        v = fn(variables, data)
        return (not v) if type(v) is bool else SLOW

    return negate


def _and(a: Fn, b: Fn) -> Fn:
    def both(variables: dict, data: dict) -> Any:
        x, y = a(variables, data), b(variables, data)
        return (x and y) if type(x) is bool and type(y) is bool else SLOW

    return both


def _or(a: Fn, b: Fn) -> Fn:
    def either(variables: dict, data: dict) -> Any:
        x, y = a(variables, data), b(variables, data)
        return (x or y) if type(x) is bool and type(y) is bool else SLOW

    return either


def _scalars(a: Fn, b: Fn, kinds: tuple[type, ...], op: Callable[[Any, Any], Any]) -> Fn:
    """``a op b`` for two values of one of ``kinds`` (the same one); texts CEL can carry."""

    def apply(variables: dict, data: dict) -> Any:
        x, y = a(variables, data), b(variables, data)
        kind = type(x)
        if kind is not type(y) or kind not in kinds:
            return SLOW
        if kind is str:
            if not (_text_ok(x) and _text_ok(y)):
                return SLOW
        elif kind is int and not (_INT64[0] <= x < _INT64[1] and _INT64[0] <= y < _INT64[1]):
            return SLOW
        value = op(x, y)
        if type(value) is int and not _INT64[0] <= value < _INT64[1]:
            return SLOW  # CEL: overflow error
        return value

    return apply


def _eq(a: Fn, b: Fn) -> Fn:
    return _scalars(a, b, (str, int, bool, float), lambda x, y: x == y)


def _ne(a: Fn, b: Fn) -> Fn:
    return _scalars(a, b, (str, int, bool, float), lambda x, y: x != y)


def _add(a: Fn, b: Fn) -> Fn:
    return _scalars(a, b, (int, float, str), lambda x, y: x + y)


def _sub(a: Fn, b: Fn) -> Fn:
    return _scalars(a, b, (int, float), lambda x, y: x - y)


def _mul(a: Fn, b: Fn) -> Fn:
    return _scalars(a, b, (int, float), lambda x, y: x * y)


_ORDERED = (int, str)
_RELATIONS: dict[str, Callable[[Fn, Fn], Fn]] = {
    "==": _eq,
    "!=": _ne,
    "<": lambda a, b: _scalars(a, b, _ORDERED, lambda x, y: x < y),
    "<=": lambda a, b: _scalars(a, b, _ORDERED, lambda x, y: x <= y),
    ">": lambda a, b: _scalars(a, b, _ORDERED, lambda x, y: x > y),
    ">=": lambda a, b: _scalars(a, b, _ORDERED, lambda x, y: x >= y),
}
