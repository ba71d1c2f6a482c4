"""toolzoo's CEL function library, available in every expression (effects, lets, defs, subtasks).

Most functions are the CEL package's own extended standard library (``cel.stdlib``, modelled on
cel-go's extensions and Kubernetes' list library): strings, lists, ``min``/``max``/``sum``.
toolzoo adds what domains ported from Python need and that library lacks: Python-style
``round``/``floor``/``ceil``/``abs`` (plain names: the free-name rewrite in cel.py reads a dotted
``math.x`` as a variable), ``format``, ISO-date arithmetic on strings, ``values``/``merge`` for
maps, ``indexOf`` on lists, and ``calc``, a safe arithmetic evaluator for ``calculate`` tools.
Every function is also a method: ``x.f(a)`` is ``f(x, a)``. docs/domains.md lists them all.
"""

from __future__ import annotations

import ast
import logging
import math
import operator
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Callable

import cel
from cel import stdlib

# From the CEL package (names as cel-go spells them). Dotted names (math.*, sets.*) are left out.
_FROM_STDLIB = ("min", "max", "sum", "charAt", "indexOf", "lastIndexOf", "substring", "replace", "split", "join",
                "lowerAscii", "upperAscii", "trim", "reverse", "distinct", "flatten", "slice", "sort", "first",
                "last")


def _number(x: Any, fn: str) -> float | int:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{fn}() takes a number, got {type(x).__name__}")
    return x


def round_(x: Any, digits: int = 0) -> Any:
    """Python's ``round``: ``round(2.675, 2)``; an int stays an int, a double stays a double."""
    x = _number(x, "round")
    if isinstance(x, int):
        return round(x, digits) if digits < 0 else x
    return float(round(x, digits))


def floor_(x: Any) -> int:
    """The largest int <= x (an int, so it can index a list)."""
    return math.floor(_number(x, "floor"))


def ceil_(x: Any) -> int:
    """The smallest int >= x."""
    return math.ceil(_number(x, "ceil"))


def abs_(x: Any) -> Any:
    return abs(_number(x, "abs"))


def index_of(container: Any, item: Any, offset: int = 0) -> int:
    """The first index of ``item`` in a list (or of a substring in text) at or after ``offset``; -1 if absent."""
    if isinstance(container, list):
        for i in range(max(offset, 0), len(container)):
            if container[i] == item and type(container[i]) is type(item):
                return i
        return -1
    return stdlib.index_of(container, item, offset)


def values(m: Any) -> list[Any]:
    """The values of a map, in key order (maps arrive in no particular order)."""
    if not isinstance(m, dict):
        raise TypeError(f"values() takes a map, got {type(m).__name__}")
    return [m[k] for k in sorted(m, key=str)]


def merge(a: Any, b: Any) -> dict[str, Any]:
    """A new map: ``a``'s entries, overridden and extended by ``b``'s."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise TypeError("merge() takes two maps")
    return {**a, **b}


def to_map(pairs: Any) -> dict[str, Any]:
    """A map from a list of ``[key, value]`` pairs: ``to_map(ps.map(p, [p.name, p.id]))``; a
    later pair wins. Keys must be text (JSON maps have text keys)."""
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise TypeError("to_map() takes a list of [key, value] pairs")
    if not all(isinstance(p[0], str) for p in pairs):
        raise TypeError("to_map(): keys must be text")
    return {p[0]: p[1] for p in pairs}


def zip_map(keys: Any, vals: Any) -> dict[str, Any]:
    """A map from a list of text keys and a list of values of the same length."""
    if not isinstance(keys, list) or not isinstance(vals, list) or len(keys) != len(vals):
        raise TypeError("zip_map() takes two lists of the same length")
    return to_map([[k, v] for k, v in zip(keys, vals)])


def format_(template: str, args: Any) -> str:
    """cel-go's ``strings.format``: ``'%s owes %.2f'.format([name, 12.5])``. Verbs: ``%s`` (text),
    ``%d`` (integer), ``%f`` / ``%.Nf`` (fixed point, default 6 digits), ``%%``."""
    if not isinstance(template, str) or not isinstance(args, list):
        raise TypeError("format() takes a text and a list: 'x=%d'.format([x])")
    out, i, n = [], 0, 0
    while i < len(template):
        ch = template[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        j = i + 1
        precision = None
        if j < len(template) and template[j] == ".":
            k = j + 1
            while k < len(template) and template[k].isdigit():
                k += 1
            precision, j = int(template[j + 1 : k] or 0), k
        verb = template[j] if j < len(template) else ""
        if verb == "%":
            out.append("%")
        elif verb in ("s", "d", "f"):
            if n >= len(args):
                raise ValueError(f"format: more verbs than arguments ({len(args)} given)")
            v = args[n]
            n += 1
            if verb == "s":
                out.append(v if isinstance(v, str) else _text(v))
            elif verb == "d":
                if isinstance(v, bool) or not isinstance(v, int):
                    raise TypeError(f"format: %d needs an integer, got {type(v).__name__}")
                out.append(str(v))
            else:
                out.append(f"{_number(v, 'format %f'):.{6 if precision is None else precision}f}")
        else:
            raise ValueError(f"format: unsupported verb %{verb} (use %s, %d, %f, %.Nf, %%)")
        i = j + 1
    if n != len(args):
        raise ValueError(f"format: {len(args)} arguments for {n} verbs")
    return "".join(out)


def _text(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# -- ISO dates on strings ('2024-05-15' or '2024-05-15T14:00:00') -----------------------------

def _parse_day(d: Any, fn: str) -> tuple[datetime, bool]:
    if not isinstance(d, str):
        raise TypeError(f"{fn}() takes an ISO date text like '2024-05-15', got {type(d).__name__}")
    try:
        if len(d) == 10:
            return datetime.combine(date.fromisoformat(d), datetime.min.time()), False
        return datetime.fromisoformat(d), True
    except ValueError:
        raise ValueError(f"{fn}(): {d!r} is not an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)") from None


def date_add_days(d: Any, n: Any) -> str:
    """``date_add_days('2024-05-30', 3) == '2024-06-02'``; a date-time keeps its time of day."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError("date_add_days(d, n): n must be an integer")
    value, has_time = _parse_day(d, "date_add_days")
    out = value + timedelta(days=n)
    return out.isoformat() if has_time else out.date().isoformat()


def date_diff_days(a: Any, b: Any) -> int:
    """Whole days from ``b`` to ``a`` (``a - b``), by calendar date: ``date_diff_days('2024-06-02', '2024-05-30') == 3``."""
    return (_parse_day(a, "date_diff_days")[0].date() - _parse_day(b, "date_diff_days")[0].date()).days


def weekday(d: Any) -> int:
    """Day of the week, Monday = 0 ... Sunday = 6 (Python's ``date.weekday``)."""
    return _parse_day(d, "weekday")[0].weekday()


# -- calc: safe arithmetic --------------------------------------------------------------------

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_CALC_LENGTH = 1_000
MAX_EXPONENT = 1_000


def calc(expression: Any) -> float:
    """Evaluate an arithmetic expression given as text (numbers, ``+ - * / // % **``,
    parentheses, unary minus) and return a double. Nothing else parses: no names, no calls.
    ``calc('(2 + 3) * 4 / 8') == 2.5``. Division by zero and oversized input are errors."""
    if not isinstance(expression, str):
        raise TypeError(f"calc() takes text, got {type(expression).__name__}")
    if len(expression) > MAX_CALC_LENGTH:
        raise ValueError(f"calc(): expression longer than {MAX_CALC_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"calc(): not an arithmetic expression: {expression!r}") from None
    return float(_calc(tree.body))


def _calc(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _calc(node.left), _calc(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"calc(): exponent larger than {MAX_EXPONENT}")
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ValueError("calc(): division by zero") from None
        except OverflowError:
            raise ValueError("calc(): result too large") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_calc(node.operand))
    raise ValueError(f"calc(): only numbers, + - * / // % ** and parentheses are allowed "
                     f"(found {type(node).__name__})")


@lru_cache(maxsize=256)
def _fold_program(step: str) -> Any:
    try:
        return cel.compile(step)
    except Exception as exc:
        raise ValueError(f"fold(): the step {step!r} is not a CEL expression: {exc}") from None


def fold(items: Any, init: Any, step: Any) -> Any:
    """``fold(list, init, 'acc + x')``: ``acc`` starts as ``init`` and becomes ``step`` evaluated
    with ``acc`` and ``x`` (each element in turn); the result is the last ``acc``. cel-rust's
    macros are fixed, so the step is CEL text, compiled once per text; it sees ``acc``, ``x``
    and the library functions, nothing else, and runs exactly once per element."""
    if not isinstance(step, str):
        raise TypeError(f"fold() takes the step as CEL text, got {type(step).__name__}")
    if isinstance(items, dict):
        items = sorted(items)  # a map folds over its keys, in order (as for_each does)
    if not isinstance(items, list):
        raise TypeError(f"fold() takes a list, got {type(items).__name__}")
    program = _fold_program(step)
    ctx = cel.Context()
    for name, fn in FUNCTIONS.items():
        ctx.add_function(name, fn)
    acc = init
    for x in items:
        ctx.add_variable("acc", acc)
        ctx.add_variable("x", x)
        try:
            acc = program.execute(ctx)
        except Exception as exc:
            raise ValueError(f"fold(): step {step!r} failed at x={x!r}: {exc}") from None
    return acc


FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{name: stdlib.STDLIB_FUNCTIONS[name] for name in _FROM_STDLIB},
    "indexOf": index_of,
    "round": round_, "floor": floor_, "ceil": ceil_, "abs": abs_,
    "format": format_, "values": values, "merge": merge, "to_map": to_map, "zip_map": zip_map,
    "date_add_days": date_add_days, "date_diff_days": date_diff_days, "weekday": weekday,
    "calc": calc, "range": stdlib.lists_range, "fold": fold,
}

# Functions cel-rust itself implements (for the load-time "unknown function" check).
BUILTIN_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string", "bytes", "bool",
    "timestamp", "duration", "type", "dyn", "has", "all", "exists", "exists_one", "map", "filter", "max", "min",
    "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek", "getHours",
    "getMinutes", "getSeconds", "getMilliseconds", "optional.of", "optional.none", "optional.ofNonZeroValue",
    "hasValue", "value", "orValue", "or",
})


class _QuietAgentErrors(logging.Filter):
    """The CEL package logs a warning whenever a registered function raises. A library function
    refusing bad input (``calc('x')``) is the agent's mistake and already becomes the tool's
    error message, so it is not logged as well."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(msg.startswith(f"Python function '{name}'") for name in FUNCTIONS)


logging.getLogger("cel").addFilter(_QuietAgentErrors())
