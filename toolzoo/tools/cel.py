"""CEL expressions and ``{CEL}`` text templates, compiled once at load time.

Evaluation uses the Rust-backed ``common-expression-language`` package, whose costs shape this
module (measured on a 30-record collection): converting Python values into CEL values is slow,
a ``cel.Context`` re-converts *all* its variables whenever one changes, and reaching a map
*inside* another variable (``state.orders``) copies it (~90 us), while a top-level variable is
shared (~1 us). So, at compile time:

* ``state.<collection>`` becomes the top-level variable ``state__<collection>``; the state's
  collections are the only variables registered on a context, cached per state version
  (:meth:`toolzoo.tools.state.State.cel_context`);
* every other free name (``args``, ``prev``, bindings, ...) becomes a call ``_tz('args',
  'order_id')`` that reads the current value from a context variable, so no re-conversion
  happens per call;
* an expression that uses a free name inside a macro body (``filter``, ``map``, ...) would call
  ``_tz`` once per element, so there the values are substituted as literals instead and the
  resulting program is cached by its text.
"""

import json
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import cel

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"""(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>.)""", re.S)
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_KEYWORDS = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
             "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}

_VARS: ContextVar[dict[str, Any]] = ContextVar("toolzoo_cel_vars", default={})


class CelError(Exception):
    """A CEL expression failed to compile or to evaluate."""


def _lookup(name: str, *path: str) -> Any:
    return _lookup_path(_VARS.get(), _Free(name, path))


def new_context(functions: dict[str, Callable[..., Any]] | None = None) -> cel.Context:
    ctx = cel.Context()
    ctx.add_function("_tz", _lookup)
    for name, fn in (functions or {}).items():
        ctx.add_function(name, fn)
    return ctx


@dataclass
class Env:
    """What an expression is evaluated against: a context (state + functions) and the values of
    the other free names."""

    ctx: cel.Context
    variables: dict[str, Any] = field(default_factory=dict)


def env_from_dict(values: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None) -> Env:
    """An Env for one-off evaluations (not hot paths): every value becomes available."""
    from toolzoo.tools.state import CEL_FUNCTIONS

    ctx = new_context({**CEL_FUNCTIONS, **(functions or {})})
    for coll, records in (values.get("state") or {}).items():
        ctx.add_variable(f"state__{coll}", records)
    return Env(ctx, {k: v for k, v in values.items() if k != "state"})


_MACROS = {"all", "exists", "exists_one", "map", "filter"}


@dataclass(frozen=True)
class _Free:
    """A free-variable reference: the name and the plain field chain read from it."""

    name: str
    path: tuple[str, ...]


def _segments(source: str) -> tuple[list[str | _Free], bool]:
    """Split an expression into text and free-variable references; also report whether a free
    reference sits inside a macro body."""
    bound = set(_MACRO_VAR.findall(source))
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(source)]
    out: list[str | _Free] = []
    depth_stack: list[bool] = []  # one entry per open paren: is it a macro's argument list?
    in_macro = 0
    free_in_macro = False
    prev_sig = ""
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
                    out.append(f"state__{field}")
                    prev_sig, i = "x", k + 1
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
                keep = path[-1:] if (path and len(out) >= 2 and out[-1] == "(" and out[-2] == "has") else []
                out.append(_Free(text, tuple(path[: len(path) - len(keep)])))
                out.extend(f".{f}" for f in keep)
                free_in_macro = free_in_macro or in_macro > 0
                prev_sig = "x"
                i += 1
                continue
            out.append(text)
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
        i += 1
    return out, free_in_macro


def _call(ref: _Free) -> str:
    return "_tz(" + ", ".join(repr(p) for p in (ref.name, *ref.path)) + ")"


def rewrite(source: str) -> str:
    """The ``_tz`` form of an expression (see the module docstring)."""
    segments, _ = _segments(source)
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


@dataclass(frozen=True)
class Expr:
    source: str
    program: Any  # None in literal mode
    segments: tuple[str | _Free, ...] = ()  # literal mode: text and references to substitute

    def eval(self, env: Env | dict[str, Any]) -> Any:
        if isinstance(env, dict):
            env = env_from_dict(env)
        token = _VARS.set(env.variables)
        try:
            program = self.program if self.program is not None else self._specialise(env.variables)
            return program.execute(env.ctx)
        except CelError:
            raise
        except Exception as exc:  # the library raises ValueError/RuntimeError/TypeError/KeyError
            raise CelError(f"{_explain(exc)} (in `{self.source}`)") from None
        finally:
            _VARS.reset(token)

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
    segments, literal = _segments(source)
    try:
        if literal:
            return Expr(source, None, tuple(segments))
        return Expr(source, cel.compile("".join(s if isinstance(s, str) else _call(s) for s in segments)))
    except Exception as exc:
        raise CelError(f"cannot prepare expression: {_clean(str(exc))}") from None


def _explain(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}"
    text = _clean(str(exc))
    m = re.search(r"undeclared variable '([^']+)'", text)
    if m:
        return f"undeclared variable {m.group(1)!r}"
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
