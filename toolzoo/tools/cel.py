"""CEL expressions and ``{CEL}`` text templates, compiled once at load time.

Evaluation uses the Rust-backed ``common-expression-language`` package. Its cost is converting
Python values into CEL values: a ``cel.Context`` converts *all* its variables again whenever
one of them changes. So the domain state is the only variable registered on a context (cached
per state version, see :meth:`toolzoo.tools.state.State.cel_context`), and every other free
name (``args``, ``prev``, subtask bindings, ...) is rewritten at compile time into a call of the
registered function ``_tz(name)``, which reads the current values from a context variable.
A tool call then costs microseconds instead of a re-conversion of the whole state.
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable

import cel

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"""(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>.)""", re.S)
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_KEYWORDS = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
             "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
# Names kept as real CEL variables (registered on the context), never rewritten.
CONTEXT_VARIABLES = {"state"}

_VARS: ContextVar[dict[str, Any]] = ContextVar("toolzoo_cel_vars", default={})


class CelError(Exception):
    """A CEL expression failed to compile or to evaluate."""


def _lookup(name: str) -> Any:
    variables = _VARS.get()
    if name not in variables:
        raise KeyError(f"undeclared variable {name!r}")
    return variables[name]


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
    for name in CONTEXT_VARIABLES & set(values):
        ctx.add_variable(name, values[name])
    return Env(ctx, {k: v for k, v in values.items() if k not in CONTEXT_VARIABLES})


def rewrite(source: str) -> str:
    """Turn free variables (other than ``state``) into ``_tz('name')`` calls."""
    bound = set(_MACRO_VAR.findall(source))
    out: list[str] = []
    prev_sig = ""  # the previous significant (non-space) character
    tokens = list(_TOKEN.finditer(source))
    for i, m in enumerate(tokens):
        text = m.group()
        if m.lastgroup == "id":
            nxt = next((t.group() for t in tokens[i + 1:] if not t.group().isspace()), "")
            free = (prev_sig != "." and nxt != "(" and text not in _KEYWORDS and text not in bound
                    and text not in CONTEXT_VARIABLES)
            out.append(f"_tz('{text}')" if free else text)
        else:
            out.append(text)
        if not text.isspace():
            prev_sig = text[-1]
    return "".join(out)


@dataclass(frozen=True)
class Expr:
    source: str
    program: Any

    def eval(self, env: Env | dict[str, Any]) -> Any:
        if isinstance(env, dict):
            env = env_from_dict(env)
        token = _VARS.set(env.variables)
        try:
            return self.program.execute(env.ctx)
        except Exception as exc:  # the library raises ValueError/RuntimeError/TypeError/KeyError
            raise CelError(f"{_explain(exc)} (in `{self.source}`)") from None
        finally:
            _VARS.reset(token)

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
    try:
        return Expr(source, cel.compile(rewrite(source)))
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
