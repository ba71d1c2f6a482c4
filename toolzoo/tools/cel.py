"""CEL expressions and ``{CEL}`` text templates, compiled once at load time.

Evaluation uses the Rust-backed ``common-expression-language`` package, whose costs shape this
module (measured): converting a Python value into a CEL value is slow (~1-2 us per string or
map entry, so a 10,000-record collection takes ~140 ms), a ``cel.Context`` rebuilds its whole
environment (every variable) after any ``add_variable``, and reading a key of a top-level map
variable copies the map (~115 us at 10,000 records). So, at compile time:

* ``state.<c>[key]`` (with any trailing ``.field`` chain) and ``key in state.<c>`` become calls
  ``_tzr('c', key, 'field', ...)`` and ``_tzin('c', key)`` that read the one record from Python:
  a read or a write costs the same whatever the size of any collection;
* a collection that is only iterated or counted (``state.orders.filter(k, ...)``, ``.map``,
  ``.all``, ``.exists``, ``size(...)``, ``sorted(...)``) is bound as the list of its keys,
  ``keys__<c>``, converted again only when a key is added or removed (the records inside the
  macro body are read by key as above); a collection used any other way whole (returned,
  compared) is bound as the map ``state__<c>``, converted again after each write of it. Each
  expression runs on a cached context holding just the variables it needs
  (:class:`ContextCache`); such expressions are O(collection) anyway;
* every other free name (``args``, ``prev``, bindings, ...) becomes a call ``_tz('args',
  'order_id')`` that reads the current value, so nothing is re-converted per call;
* an expression that uses a free name inside a macro body (``filter``, ``map``, ...) would call
  ``_tz`` once per element, so there the values are substituted as literals instead and the
  resulting program is cached by its text;
* the commonest shapes (``args.x in state.c``, ``state.c[args.x]``, ``state.c[args.x].f``) are
  answered in Python without entering CEL at all (property-tested against plain CEL), and so
  are other expressions made only of reads, literals, map/list literals and simple operators
  (the accessors of ``cel_fast.py``, which hand anything uncertain back to CEL).
"""

import json
import logging
import marshal
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import cel

from toolzoo.tools.cel_fast import SLOW as _SLOW
from toolzoo.tools.cel_fast import compile_accessor

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"""(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>.)""", re.S)
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_KEYWORDS = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
             "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
_NO_OVERLOAD = "No such overload: the operation is not defined for the given operand types"


class CelError(Exception):
    """A CEL expression failed to compile or to evaluate."""


class _QuietInternals(logging.Filter):
    """The CEL library logs a warning whenever a registered function raises; a missing record
    read through ``_tzr`` is an ordinary CEL error (it becomes a CelError), not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "function '_tz" not in record.getMessage()


logging.getLogger("cel").addFilter(_QuietInternals())


@dataclass
class Env:
    """What an expression is evaluated against: the state's collections (and the cached
    contexts holding collections used whole), and the values of the other free names."""

    contexts: "ContextCache"
    variables: dict[str, Any] = field(default_factory=dict)


_ENV: ContextVar[Env | None] = ContextVar("toolzoo_cel_env", default=None)


def _current() -> Env:
    env = _ENV.get()
    if env is None:  # pragma: no cover - only reachable by calling a program outside Expr.eval
        raise KeyError("no evaluation in progress")
    return env


def _lookup(name: str, *path: str) -> Any:
    return _lookup_path(_current().variables, _Free(name, path))


def _key_text(key: Any) -> str:
    """A record key as CEL would look it up in a map with text keys (``m[5]`` misses as '5')."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        raise KeyError(str(key))
    raise TypeError(_NO_OVERLOAD)


def _record(collection: str, key: Any, *fields: str) -> Any:
    """``state.<collection>[key].f1.f2...``: one record (or field) read, O(1) in the state size."""
    value = _current().contexts.data[collection].get(_key_text(key)) if isinstance(key, str) else None
    if value is None:
        raise KeyError(_key_text(key))
    for f in fields:
        if not isinstance(value, dict):
            raise TypeError(_NO_OVERLOAD)
        if f not in value:
            raise KeyError(f)
        value = value[f]
    return value


def _contains(collection: str, key: Any) -> bool:
    """``key in state.<collection>``: text keys only, as CEL answers for a map with text keys."""
    if isinstance(key, str):
        return key in _current().contexts.data[collection]
    if isinstance(key, (bool, int)):
        return False
    raise TypeError(f"Value of type {'null' if key is None else type(key).__name__} cannot be used as a map key")


_INTERNAL_FUNCTIONS: dict[str, Callable[..., Any]] = {"_tz": _lookup, "_tzr": _record, "_tzin": _contains}


def new_context(functions: dict[str, Callable[..., Any]] | None = None) -> cel.Context:
    ctx = cel.Context()
    for name, fn in {**_INTERNAL_FUNCTIONS, **(functions or {})}.items():
        ctx.add_function(name, fn)
    return ctx


class ContextCache:
    """The CEL contexts of one state: one per set of collections that some expression uses
    whole (plus a shared one with none), each converting a collection again only after that
    collection was written, so a write converts nothing until a listing reads it."""

    def __init__(self, data: dict[str, dict[str, Any]], version: Callable[[str], int] | None = None,
                 functions: dict[str, Callable[..., Any]] | None = None):
        self.data = data
        self._version = version or (lambda name: 0)
        self._functions = functions
        self._contexts: dict[frozenset[str], tuple[cel.Context, dict[str, tuple[int, list | None]]]] = {}

    def context(self, whole: frozenset[str]) -> cel.Context:
        """A context holding the variables ``whole`` names: ``state__c`` (collection ``c`` as a
        map) or ``keys__c`` (its keys, for expressions that only iterate or count them)."""
        if not whole and self._functions is None:
            return _base_context()
        entry = self._contexts.get(whole)
        if entry is None:
            entry = self._contexts[whole] = (new_context(_state_functions() | (self._functions or {})), {})
        ctx, synced = entry
        for name in whole:
            kind, coll = name.split("__", 1)
            v = self._version(coll)
            old = synced.get(name)
            if old is not None and old[0] == v:
                continue
            records = self.data.get(coll, {})
            if kind == "state":
                ctx.add_variable(name, records)  # top-level: shared
                synced[name] = (v, None)
            else:  # the keys only change on an insert or a delete: a write to a record is free
                keys = list(records)
                if old is None or old[1] != keys:
                    ctx.add_variable(name, keys)
                    synced[name] = (v, keys)
                else:
                    synced[name] = (v, old[1])  # the list the context holds
        return ctx


def _state_functions() -> dict[str, Callable[..., Any]]:
    from toolzoo.tools.state import CEL_FUNCTIONS  # state imports this module

    return CEL_FUNCTIONS


@lru_cache(maxsize=1)
def _base_context() -> cel.Context:
    """Functions only, shared by every state: never modified, so never rebuilt."""
    return new_context(_state_functions())


def env_from_dict(values: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None) -> Env:
    """An Env for one-off evaluations (not hot paths): every value becomes available."""
    data = {coll: records for coll, records in (values.get("state") or {}).items()}
    return Env(ContextCache(data, functions=functions or None), {k: v for k, v in values.items() if k != "state"})


_MACROS = {"all", "exists", "exists_one", "map", "filter"}


@dataclass(frozen=True)
class _Free:
    """A free-variable reference: the name and the plain field chain read from it."""

    name: str
    path: tuple[str, ...]


@dataclass(eq=False)
class _StateRef:
    """``state.<collection>`` in the token stream, before it is known whether the expression
    uses the collection whole (a variable) or by key (function calls)."""

    collection: str
    after: str = ""  # the next significant token
    member_of_in: bool = False  # the right-hand side of ``in``
    method: str = ""  # ``state.c.<method>``: the name after the dot
    wrapped: bool = False  # the sole argument of size() / sorted()

    @property
    def by_key(self) -> bool:
        """``state.c[key]`` or ``key in state.c``: one record's worth."""
        return self.after == "[" or (self.member_of_in and self.after in _IN_RHS_END)

    @property
    def keys_suffice(self) -> bool:
        """A whole use that only needs the keys (iterating, counting, sorting them)."""
        return self.method in _MACROS or self.method == "size" or self.wrapped


def _segments(source: str) -> tuple[list[str | _Free], bool, frozenset[str]]:
    """Split an expression into text and free-variable references; also report whether a free
    reference sits inside a macro body, and which collections the expression uses whole."""
    raw, free_in_macro = _tokenise(source)
    bare = [s for s in raw if isinstance(s, _StateRef) and not s.by_key]
    as_map = frozenset(r.collection for r in bare if not r.keys_suffice)
    as_keys = frozenset(r.collection for r in bare) - as_map
    variables = frozenset({f"state__{c}" for c in as_map} | {f"keys__{c}" for c in as_keys})
    return _keyed(raw, as_map), free_in_macro, variables


def _tokenise(source: str) -> tuple[list[Any], bool]:
    bound = set(_MACRO_VAR.findall(source))
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(source)]
    out: list[Any] = []
    depth_stack: list[bool] = []  # one entry per open paren: is it a macro's argument list?
    in_macro = 0
    free_in_macro = False
    prev_sig = ""
    prev_word = ""  # the previous significant token when it was an identifier
    i = 0

    def next_sig(j: int) -> tuple[int, str]:
        while j < len(tokens) and tokens[j][1].isspace():
            j += 1
        return j, (tokens[j][1] if j < len(tokens) else "")

    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "id":
            j, nxt = next_sig(i + 1)
            if text == "state" and prev_sig != "." and nxt == ".":
                k, field = next_sig(j + 1)
                if k < len(tokens) and tokens[k][0] == "id":
                    m, after = next_sig(k + 1)
                    method = next_sig(m + 1)[1] if after == "." else ""
                    wrapped = _wrapped_by(out, ("size", "sorted")) and after == ")"
                    out.append(_StateRef(field, after, prev_word == "in", method, wrapped))
                    prev_sig, prev_word, i = "x", "", k + 1
                    continue
            free = (prev_sig != "." and nxt != "(" and text not in _KEYWORDS and text not in bound)
            if free:
                if text == "state":
                    raise CelError("`state` must be followed by .<collection>")
                path: list[str] = []
                while nxt == ".":
                    k, field = next_sig(j + 1)
                    _, after = next_sig(k + 1)
                    if k >= len(tokens) or tokens[k][0] != "id" or after == "(":
                        break
                    path.append(field)
                    i, (j, nxt) = k, next_sig(k + 1)
                # has(x.f) tests presence: the last field must stay a real field selection.
                keep = path[-1:] if (path and _in_has(out)) else []
                out.append(_Free(text, tuple(path[: len(path) - len(keep)])))
                out.extend(f".{f}" for f in keep)
                free_in_macro = free_in_macro or in_macro > 0
                prev_sig, prev_word = "x", ""
                i += 1
                continue
            out.append(text)
            prev_word = text
        elif text == "(":
            is_macro = prev_sig != "" and isinstance(out[-1], str) and out[-1] in _MACROS if out else False
            depth_stack.append(is_macro)
            in_macro += is_macro
            out.append(text)
        elif text == ")":
            if depth_stack and depth_stack.pop():
                in_macro -= 1
            out.append(text)
        else:
            out.append(text)
        if not text.isspace():
            prev_sig = text[-1]
            if kind != "id":
                prev_word = ""
        i += 1
    return out, free_in_macro


def _wrapped_by(out: list[Any], functions: tuple[str, ...]) -> bool:
    """Whether the output so far ends with ``f(`` for one of ``functions``."""
    sig = [s for s in out if not (isinstance(s, str) and s.isspace())]
    return len(sig) >= 2 and sig[-1] == "(" and sig[-2] in functions and (len(sig) < 3 or sig[-3] != ".")


def _in_has(out: list[Any]) -> bool:
    """Whether the output so far ends with ``has(``."""
    sig = [s for s in out if not (isinstance(s, str) and s.isspace())]
    return len(sig) >= 2 and sig[-1] == "(" and sig[-2] == "has"


# ``in`` binds like ``==`` (left-associative, below arithmetic): its left operand starts after
# the last ``&&``/``||``/``?``/``:``/``,`` or unmatched opener, and ``state.c`` is its whole right
# operand only when what follows binds no tighter.
_IN_BOUNDARY = {"&", "|", "?", ":", ","}
_IN_RHS_END = {"", "&", "|", "?", ":", ",", ")", "]", "}", "=", "!", "<", ">", "in"}


def _keyed(raw: list[Any], whole: frozenset[str]) -> list[str | _Free]:
    """Replace each ``state.<c>`` reference: a variable when ``c`` is used whole, else the
    ``_tzr``/``_tzin`` calls (``[key]`` plus the field chain after it; ``x in state.c``)."""
    out: list[Any] = []
    closers: list[str | None] = []  # per open '[': the text that replaces its ']' (None: keep)
    i = 0
    while i < len(raw):
        seg = raw[i]
        if isinstance(seg, _StateRef) and seg.collection in whole:
            out.append(f"state__{seg.collection}")
        elif isinstance(seg, _StateRef) and not seg.by_key:  # iterated or counted: its keys
            out.append(f"keys__{seg.collection}")
        elif isinstance(seg, _StateRef) and seg.member_of_in and seg.after != "[":  # `x in state.c[k]...`: an `in` over a record's part
            start = _in_left_start(out)
            lhs = out[start:]
            del out[start:]
            while lhs and isinstance(lhs[-1], str) and lhs[-1].isspace():
                lhs.pop()
            assert lhs and lhs[-1] == "in"
            lhs.pop()
            out += ["_tzin", "(", f"{seg.collection!r}, ", *lhs, ")"]  # one bracket per segment
        elif isinstance(seg, _StateRef):  # followed by '[' (after whitespace)
            j = i + 1
            while isinstance(raw[j], str) and raw[j].isspace():
                j += 1
            assert raw[j] == "["
            closers.append(_Close(raw, _in_has(out)))
            out += ["_tzr", "(", f"{seg.collection!r}, "]
            i = j + 1
            continue
        elif seg == "[":
            closers.append(None)
            out.append(seg)
        elif seg == "]" and closers:
            closer = closers.pop()
            if closer is None:
                out.append(seg)
            else:
                i = closer.finish(out, i)
                continue
        else:
            out.append(seg)
        i += 1
    return out


class _Close:
    """Closes a ``_tzr(`` call at its ``]``, folding the plain field chain after it."""

    def __init__(self, raw: list[Any], in_has: bool):
        self.raw, self.in_has = raw, in_has

    def finish(self, out: list[Any], i: int) -> int:
        raw, fields, j = self.raw, [], i + 1
        while True:
            k = j
            while k < len(raw) and isinstance(raw[k], str) and raw[k].isspace():
                k += 1
            if k >= len(raw) or raw[k] != ".":
                break
            m = k + 1
            while m < len(raw) and isinstance(raw[m], str) and raw[m].isspace():
                m += 1
            if m >= len(raw) or not (isinstance(raw[m], str) and _IDENT.fullmatch(raw[m])):
                break
            n = m + 1
            while n < len(raw) and isinstance(raw[n], str) and raw[n].isspace():
                n += 1
            if n < len(raw) and raw[n] == "(":  # a method call: stays CEL
                break
            fields.append((raw[m], m + 1))
            j = m + 1
        if self.in_has and fields:  # has(state.c[k].f): the last field stays a selection
            fields.pop()
        end = fields[-1][1] if fields else i + 1
        out += ["".join(f", {f!r}" for f, _ in fields), ")"]
        return end


def _in_left_start(out: list[Any]) -> int:
    """Where the left operand of a trailing ``in`` starts in ``out``."""
    j = len(out) - 1
    while j >= 0 and isinstance(out[j], str) and out[j].isspace():
        j -= 1
    assert out[j] == "in"
    depth = 0
    k = j - 1
    while k >= 0:
        seg = out[k]
        if isinstance(seg, str):
            if seg in (")", "]", "}"):
                depth += 1
            elif seg in ("(", "[", "{"):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and seg in _IN_BOUNDARY:
                break
        k -= 1
    return k + 1


def _call(ref: _Free) -> str:
    return "_tz(" + ", ".join(repr(p) for p in (ref.name, *ref.path)) + ")"


def rewrite(source: str) -> str:
    """The ``_tz`` form of an expression (see the module docstring)."""
    segments, _, _ = _segments(source)
    return "".join(seg if isinstance(seg, str) else _call(seg) for seg in segments)


def _lookup_path(variables: dict[str, Any], ref: _Free) -> Any:
    if ref.name not in variables:
        raise KeyError(f"undeclared variable {ref.name!r}")
    value = variables[ref.name]
    for field in ref.path:
        if not isinstance(value, dict):
            raise KeyError(f"no such key {field!r}")
        # A missing field reads as null (a `prev` without that binding, an optional argument):
        # raising here would make the CEL library log every ordinary skip.
        value = value.get(field)
    return value


@lru_cache(maxsize=8192)
def _compile_cached(text: str) -> Any:
    return cel.compile(text)


_PATH = r"([A-Za-z_][A-Za-z0-9_]*)((?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)"
_FAST_IN = re.compile(rf"\s*{_PATH}\s+in\s+state\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_FAST_GET = re.compile(rf"\s*state\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\[\s*{_PATH}\s*\]((?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*")

def _fields(text: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in text.split(".")[1:])


@dataclass(frozen=True)
class _Fast:
    """A pure-Python answer for ``ref in state.c`` and ``state.c[ref].f...`` (``ref`` a free
    name with its field chain); anything unusual (a non-text key, a missing name) goes the
    CEL way so errors read exactly as CEL's."""

    collection: str
    ref: _Free
    fields: tuple[str, ...] | None  # None: membership

    def run(self, env: Env, share: bool = False) -> Any:
        variables = env.variables
        name = self.ref.name
        if name not in variables:
            return _SLOW
        key = variables[name]
        for f in self.ref.path:
            if not isinstance(key, dict):
                return _SLOW
            key = key.get(f)
        if not isinstance(key, str):
            return _SLOW
        records = env.contexts.data.get(self.collection)
        if records is None:
            return _SLOW
        if self.fields is None:
            return key in records
        value = records.get(key)
        for f in self.fields:
            if not isinstance(value, dict) or f not in value:
                return _SLOW
            value = value[f]
        if value is None and not self.fields:
            return _SLOW
        return value if share else fresh_copy(value)


_FLAT = frozenset({str, int, float, bool, type(None)})


def fresh_copy(value: Any) -> Any:
    """What CEL would hand back: fresh containers (the state's records stay unshared). marshal
    copies JSON-shaped data in C, about 1.5-2x as fast as the Python walk (records hold no
    tuples: fixtures and CEL values are lists, and a schema's ``array`` admits only lists);
    anything marshal cannot carry takes the walk. A flat record (text, int, double, bool, null
    values of exactly those types) is copied shallowly: the same values, several times faster."""
    if type(value) is dict:
        for v in value.values():
            if type(v) not in _FLAT:
                break
        else:
            return dict(value)
    if isinstance(value, (dict, list)):
        try:
            return marshal.loads(marshal.dumps(value))
        except ValueError:
            return _plain_copy(value)
    return value


def _key_ordered(value: Any) -> Any:
    """A CEL result with every map's keys in sorted order. The CEL library's maps come back in
    its hash order, which differs from run to run: a record an effect builds from a map literal
    (and so a generated task's expected records) would be written in a different key order each
    run. Values are untouched; only the key order becomes a function of the keys."""
    if type(value) is dict:
        return {k: _key_ordered(value[k]) for k in sorted(value, key=_typed_key)}
    if type(value) is list:
        return [_key_ordered(v) if type(v) in (dict, list) else v for v in value]
    return value


def _typed_key(key: Any) -> tuple[str, Any]:
    # CEL map keys are text, int, uint or bool, possibly mixed in one map: grouped by type,
    # each group in its natural order.
    return (type(key).__name__, key)


def _plain_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(v) for v in value]
    return value


@dataclass(frozen=True)
class _FastName:
    """A bare free name with its field chain (``args.order_id``): read in Python, as ``_tz``
    would; values CEL would not hand back unchanged take the CEL way."""

    ref: _Free

    def run(self, env: Env) -> Any:
        try:
            value = _lookup_path(env.variables, self.ref)
        except KeyError:
            return _SLOW
        if isinstance(value, (str, bool, float)) or value is None or (isinstance(value, int) and -2**63 <= value < 2**63):
            return value
        return _SLOW


@dataclass(frozen=True)
class _Constant:
    value: Any

    def run(self, env: Env) -> Any:
        return self.value


_FAST_NAME = re.compile(rf"\s*{_PATH}\s*")
_LITERAL = re.compile(r"""\s*(?:'[^'\\\n]*'|"[^"\\\n]*"|true|false|null|-?[0-9]{1,15})\s*""")


_FAST_FILTER = re.compile(
    rf"\s*(sorted|size)\s*\(\s*state\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*filter\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*"
    rf"(?:(true)|state\s*\.\s*\2\s*\[\s*\3\s*\]\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=)\s*"
    rf"(?:{_PATH}|('[^'\\\n]*'|-?[0-9]{{1,15}})))\s*\)\s*\)\s*")


@dataclass(frozen=True)
class _FastFilter:
    """``sorted(state.c.filter(k, state.c[k].f == v))`` (or ``!=``, or ``true``; or ``size(...)``):
    the listing loop in Python. Only where CEL's answer is certain (every record has ``f``, of
    the very type of ``v``: text, int or bool); anything else goes the CEL way."""

    wrapper: str
    collection: str
    field: str | None  # None: the predicate is ``true``
    equal: bool
    ref: _Free | None
    literal: Any

    def run(self, env: Env) -> Any:
        records = env.contexts.data.get(self.collection)
        if records is None:
            return _SLOW
        if self.field is None:
            keys = list(records)
        else:
            if self.ref is not None:
                try:
                    target = _lookup_path(env.variables, self.ref)
                except KeyError:
                    return _SLOW
            else:
                target = self.literal
            kind = type(target)
            if kind not in (str, int, bool):
                return _SLOW
            f, equal, keys = self.field, self.equal, []
            for key, rec in records.items():
                if not isinstance(rec, dict) or f not in rec or type(rec[f]) is not kind:
                    return _SLOW
                if (rec[f] == target) is equal:
                    keys.append(key)
        return len(keys) if self.wrapper == "size" else sorted(keys)


def _fast_filter(source: str) -> _FastFilter | None:
    m = _FAST_FILTER.fullmatch(source)
    if not m:
        return None
    wrapper, coll, _var, true, field, op, name, path, literal = m.groups()
    if true:
        return _FastFilter(wrapper, coll, None, True, None, None)
    if name is not None and (name in _KEYWORDS or name in ("state", _var)):
        return None
    ref = _Free(name, _fields(path or "")) if name is not None else None
    value = None if literal is None else literal[1:-1] if literal.startswith("'") else int(literal)
    return _FastFilter(wrapper, coll, field, op == "==", ref, value)


def _fast_path(source: str) -> Any:
    if (listing := _fast_filter(source)) is not None:
        return listing
    if _LITERAL.fullmatch(source):
        return _Constant(cel.evaluate(source))
    m = _FAST_NAME.fullmatch(source)
    if m and m.group(1) not in _KEYWORDS and m.group(1) != "state":
        return _FastName(_Free(m.group(1), _fields(m.group(2))))
    m = _FAST_IN.fullmatch(source)
    if m and m.group(1) not in _KEYWORDS and m.group(1) != "state":
        return _Fast(m.group(3), _Free(m.group(1), _fields(m.group(2))), None)
    m = _FAST_GET.fullmatch(source)
    if m and m.group(2) not in _KEYWORDS and m.group(2) != "state":
        return _Fast(m.group(1), _Free(m.group(2), _fields(m.group(3))), _fields(m.group(4)))
    return None


@dataclass(frozen=True)
class Expr:
    source: str
    program: Any  # None in literal mode
    segments: tuple[str | _Free, ...] = ()  # literal mode: text and references to substitute
    whole: frozenset[str] = frozenset()  # variables it needs: state__<c> (a map) / keys__<c>
    fast: Any = None  # _Fast / _FastName / _Constant / _FastFilter / cel_fast.Accessor: answered without entering CEL

    def eval(self, env: Env | dict[str, Any], share: bool = False) -> Any:
        """The value. ``share=True``: a record (or part of one) read by key may be the state's
        own object, for callers that never change it (effects: records are copy-on-write)."""
        if isinstance(env, dict):
            env = env_from_dict(env)
        if self.fast is not None:
            value = self.fast.run(env, share) if type(self.fast) is _Fast else self.fast.run(env)
            if value is not _SLOW:
                return value
        token = _ENV.set(env)
        try:
            program = self.program if self.program is not None else self._specialise(env.variables)
            value = program.execute(env.contexts.context(self.whole))
        except CelError:
            raise
        except Exception as exc:  # the library raises ValueError/RuntimeError/TypeError/KeyError
            raise CelError(f"{_explain(exc)} (in `{self.source}`)") from None
        finally:
            _ENV.reset(token)
        return _key_ordered(value) if type(value) in (dict, list) else value

    def _specialise(self, variables: dict[str, Any]) -> Any:
        parts = []
        for seg in self.segments:
            if isinstance(seg, str):
                parts.append(seg)
            else:
                try:
                    parts.append("(" + json.dumps(_lookup_path(variables, seg)) + ")")
                except (KeyError, TypeError, ValueError) as exc:
                    raise CelError(f"{_explain(exc) if isinstance(exc, KeyError) else exc} (in `{self.source}`)") from None
        return _compile_cached("".join(parts))

    def names(self) -> set[str]:
        """Identifiers this expression mentions (outside string literals), for load-time checks."""
        return set(_IDENT.findall(_strip_strings(self.source)))


def compile_expr(source: Any) -> Expr:
    """Compile a CEL expression; raise CelError with the parser's message on bad syntax."""
    if isinstance(source, bool) or isinstance(source, (int, float)):
        source = json.dumps(source)
    if not isinstance(source, str):
        raise CelError(f"expected a CEL expression (text), got {type(source).__name__}")
    if not source.strip():
        raise CelError("empty CEL expression")
    try:
        cel.compile(source)  # syntax errors are reported against what the author wrote
    except Exception as exc:
        raise CelError(_clean(str(exc))) from None
    segments, literal, whole = _segments(source)
    fast = _fast_path(source)
    if fast is None and not whole and not literal:  # field reads glued by operators, maps, lists
        fast = compile_accessor(source)
    try:
        if literal:
            return Expr(source, None, tuple(segments), whole, fast)
        return Expr(source, cel.compile("".join(s if isinstance(s, str) else _call(s) for s in segments)), (), whole, fast)
    except Exception as exc:
        raise CelError(f"cannot prepare expression: {_clean(str(exc))}") from None


def _explain(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}"
    text = _clean(str(exc))
    m = re.search(r"undeclared variable '([^']+)'", text)
    if m:
        return f"undeclared variable {m.group(1)!r}"
    # A record read through _tzr/_tzin failed: say it as CEL says a map miss.
    m = re.search(r"Function '_tz\w*' error: Python function call failed: (\w+): (.*?)\. Check function arguments", text)
    if m:
        kind, detail = m.groups()
        if kind == "KeyError":
            inner = detail[1:-1] if detail[:1] in "'\"" else detail
            return inner if inner.startswith("no such key") else f"no such key {detail}"
        return detail
    return text.replace("_tz(", "(")


def _clean(message: str) -> str:
    return " ".join(message.replace("<input>", "").split())


def _strip_strings(source: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", source)


@dataclass(frozen=True)
class Template:
    """Text with ``{CEL}`` placeholders, e.g. ``"no order {args.order_id}"``. ``{{`` and ``}}``
    are literal braces. A placeholder may itself contain balanced braces (CEL maps)."""

    source: str
    parts: tuple[str | Expr, ...]

    def render(self, env: Env | dict[str, Any]) -> str:
        if isinstance(env, dict):
            env = env_from_dict(env)
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part.eval(env)
                out.append(value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))
        return "".join(out)

    def exprs(self) -> list[Expr]:
        return [p for p in self.parts if isinstance(p, Expr)]


def compile_template(source: Any) -> Template:
    if not isinstance(source, str):
        raise CelError(f"expected a text template, got {type(source).__name__}")
    parts: list[str | Expr] = []
    text, i = [], 0
    while i < len(source):
        ch = source[i]
        if source.startswith("{{", i) or source.startswith("}}", i):
            text.append(ch)
            i += 2
        elif ch == "{":
            depth, j = 1, i + 1
            while j < len(source) and depth:
                depth += {"{": 1, "}": -1}.get(source[j], 0)
                j += 1
            if depth:
                raise CelError(f"unclosed '{{' at position {i} in template")
            if text:
                parts.append("".join(text))
                text = []
            parts.append(compile_expr(source[i + 1 : j - 1]))
            i = j
        elif ch == "}":
            raise CelError(f"unmatched '}}' at position {i} in template")
        else:
            text.append(ch)
            i += 1
    if text:
        parts.append("".join(text))
    return Template(source, tuple(parts))
