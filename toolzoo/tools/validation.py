"""JSON Schema validation of tool arguments and records, compiled once per schema at load.

``jsonschema`` (the reference) spends ~13 us finding that a valid argument object is valid,
~45% of a whole read. ``jsonschema-rs`` compiles the schema to Rust and answers "valid?" in
~0.2 us. Valid inputs, nearly all of them, take only that path; an invalid one is validated
again by ``jsonschema`` so the agent gets exactly the messages (and error paths) it always did,
and the reference has the last word when the two ever disagree.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Iterator

try:  # a compiled accelerator; without it every check takes the reference path
    import jsonschema_rs
except ImportError:  # pragma: no cover - jsonschema-rs is a declared dependency
    jsonschema_rs = None

if TYPE_CHECKING:
    import jsonschema

# ``jsonschema`` (with attrs, referencing and rpds: ~3.6 MiB per process) is imported on the
# first invalid input or schema only: a sandbox's tool server whose calls are all valid never
# loads it (bench/density.py).


def reference_validator() -> type:
    """``jsonschema.Draft202012Validator``, the reference (imported on first use)."""
    import jsonschema

    return jsonschema.Draft202012Validator


class CompiledValidator:
    """A drop-in for ``jsonschema.Draft202012Validator`` (``iter_errors``, ``is_valid``,
    ``schema``) with a compiled fast path for valid instances."""

    __slots__ = ("schema", "_reference_", "_fast")

    def __init__(self, schema: Any):
        self.schema = schema
        self._reference_ = None
        self._fast = _compile(schema)

    @property
    def _reference(self) -> Any:
        if self._reference_ is None:
            self._reference_ = reference_validator()(self.schema)
        return self._reference_

    def is_valid(self, instance: Any) -> bool:
        verdict = self._fast_verdict(instance)
        if verdict is True:
            return True
        return self._reference.is_valid(instance)

    def iter_errors(self, instance: Any) -> Iterator[jsonschema.ValidationError]:
        if self._fast_verdict(instance) is True:
            return iter(())
        return self._reference.iter_errors(instance)

    def _fast_verdict(self, instance: Any) -> bool | None:
        if self._fast is None:
            return None
        try:
            return self._fast.is_valid(instance)
        except (ValueError, TypeError, OverflowError):  # a value the compiled side cannot read
            return None


def _compile(schema: Any) -> Any:
    if jsonschema_rs is None:
        return None
    try:
        return jsonschema_rs.Draft202012Validator(schema)
    except Exception:  # a schema it cannot compile (a remote $ref, ...): the reference alone
        return None


def compiled_validator(schema: Any) -> CompiledValidator:
    """The validator for a schema already checked with :func:`schema_problem`."""
    return CompiledValidator(schema)


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema (draft 2020-12), or None.

    The reference check is ``check_schema`` with its format checker, whose only format the
    meta-schema uses and this environment checks is ``regex`` (``pattern`` values and
    ``patternProperties`` keys, compiled with ``re``). A schema the compiled meta-schema accepts
    and whose patterns all compile is accepted without importing the reference; anything else
    is decided, and worded, by the reference."""
    if jsonschema_rs is not None and _patterns_compile(schema):
        try:
            if jsonschema_rs.meta.is_valid(schema):
                return None
        except Exception:  # noqa: BLE001 - whatever it cannot read, the reference decides
            pass
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"invalid JSON Schema: {exc.message}" + (f" (at {where})" if where else "")
    return None


def _patterns_compile(node: Any) -> bool:
    """Every text under a ``pattern`` key, and every key of a ``patternProperties`` map,
    anywhere in ``node``, compiles with ``re`` (data that merely looks like a schema, e.g. an
    ``enum`` member, is checked too: a false alarm only sends the schema to the reference)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str) and not _compiles(value):
                return False
            if key == "patternProperties" and isinstance(value, dict) and not all(map(_compiles, value)):
                return False
            if not _patterns_compile(value):
                return False
    elif isinstance(node, list):
        return all(_patterns_compile(v) for v in node)
    return True


def _compiles(pattern: Any) -> bool:
    try:
        re.compile(pattern)
    except (re.error, TypeError, RecursionError):
        return False
    return True


def _non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinity in ``value`` (None when there is none).
    ``json.loads`` reads ``NaN``, ``Infinity`` and ``1e400`` as floats, and the reference
    validator takes them as numbers; JSON has no such numbers, and a NaN makes every comparison
    false, so ``!(args.amount > balance)`` would let it through a tool's own check."""
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else path
    if kind is dict:
        for k, v in value.items():
            if type(v) in _NESTED and (where := _non_finite(v, f"{path}.{k}" if path else str(k))) is not None:
                return where
    elif kind is list:
        for i, v in enumerate(value):
            if type(v) in _NESTED and (where := _non_finite(v, f"{path}.{i}" if path else str(i))) is not None:
                return where
    return None


_NESTED = frozenset({float, dict, list})


def non_finite_problem(tool_name: str, args: Any) -> str | None:
    """The tool error for a NaN or infinity in ``args`` (None when there is none). The episode
    asks before a call leaves for any session: over MCP the SDK would write a NaN as ``null``,
    and the agent would get another message than the direct session's for the same mistake."""
    if type(args) is dict:
        for v in args.values():  # the common case, flat text and int arguments, without a call
            if type(v) in _NESTED:
                break
        else:
            return None
    if (where := _non_finite(args)) is not None:
        return f"{tool_name}: invalid arguments: argument {where!r}: NaN and Infinity are not JSON numbers"
    return None


def argument_problem(tool_name: str, validator: Any, args: Any) -> str | None:
    """The agent-facing message for arguments that break the tool's schema (tool and argument
    named, at most three problems), or None when they are valid."""
    if not isinstance(args, dict):
        return f"{tool_name}: arguments must be an object, got {type(args).__name__}"
    if (problem := non_finite_problem(tool_name, args)) is not None:
        return problem
    if validator is None:
        return None
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    msgs = []
    for err in errors[:3]:
        where = ".".join(str(p) for p in err.absolute_path)
        msgs.append(f"argument {where!r}: {err.message}" if where else err.message)
    return f"{tool_name}: invalid arguments: " + "; ".join(msgs)
