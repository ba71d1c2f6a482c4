"""CEL expressions and ``{CEL}`` text templates, compiled once at load time.

Evaluation uses the Rust-backed ``common-expression-language`` package. Converting Python
values into CEL values dominates the cost, so callers evaluate against a reusable
:class:`cel.Context` (see :class:`toolzoo.tools.state.State`), which converts the state once
per state version instead of once per expression.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import cel

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CelError(Exception):
    """A CEL expression failed to compile or to evaluate."""


@dataclass(frozen=True)
class Expr:
    source: str
    program: Any

    def eval(self, ctx: cel.Context | dict[str, Any]) -> Any:
        try:
            return self.program.execute(ctx)
        except KeyError as exc:
            raise CelError(f"no such key {exc.args[0]!r} (in `{self.source}`)") from None
        except Exception as exc:  # the library raises ValueError/RuntimeError/TypeError
            raise CelError(f"{_clean(str(exc))} (in `{self.source}`)") from None

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
        return Expr(source, cel.compile(source))
    except Exception as exc:
        raise CelError(_clean(str(exc))) from None


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

    def render(self, ctx: cel.Context | dict[str, Any]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part.eval(ctx)
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
