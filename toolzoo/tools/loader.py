"""Load a domain YAML file: shape (pydantic), then every semantic check, all reported at once.

Nothing is first checked at run time: CEL compiles, JSON Schemas are valid, every tool,
collection, field and argument that a solution, effect or seed names exists, names are
unique, ``impl`` functions import, and a sample seeded state satisfies the record schemas.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import jsonschema

from toolzoo.config import LoadError, Problems, SourceMap, parse_yaml, read_text, validate_model
from toolzoo.tools.cel import CelError, Expr, Template, compile_expr, compile_template
from toolzoo.tools.spec import NAME, DomainSpec, Effect, SubtaskSpec, ToolSpec
from toolzoo.tools.state import seed_state

_ARGS_REF = re.compile(r"\bargs\.([A-Za-z_][A-Za-z0-9_]*)")
_STATE_REF = re.compile(r"\bstate\.([A-Za-z_][A-Za-z0-9_]*)")
_SCHEMA_VALIDATOR = jsonschema.Draft202012Validator
T = TypeVar("T")


@dataclass
class CompiledEffect:
    kind: str
    expr: Expr | None = None  # require / return / insert record / delete key
    error: Template | None = None
    collection: str = ""
    key: Expr | None = None
    field: str = ""
    value: Expr | None = None


@dataclass
class CompiledTool:
    spec: ToolSpec
    validator: Any
    effects: list[CompiledEffect] = field(default_factory=list)
    impl: Callable[..., Any] | None = None


@dataclass
class CompiledSubtask:
    spec: SubtaskSpec
    bind: dict[str, Expr]
    ask: Template
    solution: list[tuple[str, dict[str, Expr | Any]]]
    answer: Expr | None


@dataclass
class Domain:
    """A loaded, fully checked domain: the spec plus compiled CEL, validators and impls."""

    spec: DomainSpec
    tools: dict[str, CompiledTool]
    subtasks: list[CompiledSubtask]
    record_validators: dict[str, Any]
    path: str = ""

    @property
    def name(self) -> str:
        return self.spec.domain


def load_domain(path: str | Path) -> Domain:
    return load_domain_text(read_text(path), str(path))


def load_domain_text(text: str, file: str = "<domain>") -> Domain:
    data, source = parse_yaml(text, file)
    spec = validate_model(DomainSpec, data, source)
    return compile_domain(spec, source)


def compile_domain(spec: DomainSpec, source: SourceMap | None = None) -> Domain:
    problems = Problems(source or SourceMap(f"<{spec.domain}>"))
    if not NAME.match(spec.domain):
        problems.add(("domain",), f"domain name {spec.domain!r} must be an identifier")
    validators = _check_state(spec, problems)
    tools = _compile_tools(spec, problems)
    subtasks = _compile_subtasks(spec, problems)
    problems.raise_if_any()
    _check_seeded_records(spec, validators, problems)
    problems.raise_if_any()
    return Domain(spec, tools, subtasks, validators, source.file if source else "")


def _schema_problem(schema: Any) -> str | None:
    try:
        _SCHEMA_VALIDATOR.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"invalid JSON Schema: {exc.message}" + (f" (at {where})" if where else "")
    return None


def _props(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def _check_state(spec: DomainSpec, problems: Problems) -> dict[str, Any]:
    validators: dict[str, Any] = {}
    for name, coll in spec.state.items():
        path = ("state", name)
        if not NAME.match(name):
            problems.add(path, f"collection name {name!r} must be an identifier")
        if msg := _schema_problem(coll.schema_):
            problems.add(path + ("schema",), msg)
            continue
        if coll.key not in _props(coll.schema_):
            problems.add(path + ("key",), f"key field {coll.key!r} is not a property of the record schema")
        validators[name] = _SCHEMA_VALIDATOR(coll.schema_)
    seeded: list[str] = []
    for name, seed in spec.seed.items():
        path = ("seed", name)
        if name not in spec.state:
            problems.add(path, f"unknown collection {name!r} (state has: {', '.join(spec.state) or 'none'})")
            continue
        props = _props(spec.state[name].schema_)
        if spec.state[name].key not in seed.fields:
            problems.add(path + ("fields",), f"the key field {spec.state[name].key!r} must be generated")
        for fname, gen in seed.fields.items():
            fpath = path + ("fields", fname)
            if props and fname not in props:
                problems.add(fpath, f"unknown field {fname!r} of collection {name!r}")
            if gen.ref is not None and gen.ref not in seeded:
                why = "is not a collection" if gen.ref not in spec.state else "is not seeded before it"
                problems.add(fpath + ("ref",), f"ref {gen.ref!r} {why}")
            if gen.pattern is not None:
                try:
                    gen.pattern.format(i=0)
                except (KeyError, IndexError, ValueError) as exc:
                    problems.add(fpath + ("pattern",), f"bad pattern (only {{i}} is available): {exc}")
        seeded.append(name)
    return validators


def _compiled(problems: Problems, path: tuple, source: Any, compile: Callable[[Any], T], what: str) -> T | None:
    """``compile(source)``, or None with the error recorded, so loading goes on to report every problem."""
    try:
        return compile(source)
    except CelError as exc:
        problems.add(path, f"{what} does not compile: {exc}")
        return None


def _cel(problems: Problems, path: tuple, source: Any) -> Expr | None:
    return _compiled(problems, path, source, compile_expr, "CEL")


def _template(problems: Problems, path: tuple, source: Any) -> Template | None:
    return _compiled(problems, path, source, compile_template, "template")


def _check_refs(spec: DomainSpec, problems: Problems, path: tuple, expr: Expr | None, params: set[str] | None) -> None:
    if expr is None:
        return
    text = expr.source
    for coll in _STATE_REF.findall(text):
        if coll not in spec.state:
            problems.add(path, f"unknown collection state.{coll}")
    if params is not None:
        for arg in _ARGS_REF.findall(text):
            if arg not in params:
                problems.add(path, f"unknown argument args.{arg} (parameters: {', '.join(sorted(params)) or 'none'})")


def _compile_tools(spec: DomainSpec, problems: Problems) -> dict[str, CompiledTool]:
    tools: dict[str, CompiledTool] = {}
    for i, tool in enumerate(spec.tools):
        path = ("tools", i)
        if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", tool.name):
            problems.add(path + ("name",), f"tool name {tool.name!r} must be 1-64 of [A-Za-z0-9_.-]")
        if tool.name in tools:
            problems.add(path + ("name",), f"duplicate tool name {tool.name!r}")
        if msg := _schema_problem(tool.parameters):
            problems.add(path + ("parameters",), msg)
            validator = None
        else:
            if tool.parameters.get("type") != "object":
                problems.add(path + ("parameters", "type"), "tool parameters must be a JSON Schema of type object")
            validator = _SCHEMA_VALIDATOR(tool.parameters)
        params = set(_props(tool.parameters))
        compiled = CompiledTool(tool, validator)
        for j, effect in enumerate(tool.effects or []):
            compiled.effects.append(_compile_effect(spec, problems, path + ("effects", j), effect, params))
        if tool.impl is not None:
            compiled.impl = _import_impl(problems, path + ("impl",), tool.impl)
        tools.setdefault(tool.name, compiled)
    return tools


def _compile_effect(spec: DomainSpec, problems: Problems, path: tuple, effect: Effect, params: set[str]) -> CompiledEffect:
    kind = effect.kind
    out = CompiledEffect(kind)

    def expr(sub: tuple, source: Any) -> Expr | None:
        e = _cel(problems, path + sub, source)
        _check_refs(spec, problems, path + sub, e, params)
        return e

    def collection(sub: tuple, name: str) -> None:
        if name not in spec.state:
            problems.add(path + sub, f"unknown collection {name!r} (state has: {', '.join(spec.state) or 'none'})")
        out.collection = name

    if kind == "require":
        out.expr = expr(("require",), effect.require)
        if effect.error is not None:
            out.error = _template(problems, path + ("error",), effect.error)
            for e in out.error.exprs() if out.error else []:
                _check_refs(spec, problems, path + ("error",), e, params)
    elif kind == "set":
        op = effect.set
        collection(("set", "collection"), op.collection)
        props = _props(spec.state[op.collection].schema_) if op.collection in spec.state else {}
        if op.collection in spec.state and op.field not in props:
            problems.add(path + ("set", "field"), f"unknown field {op.field!r} of collection {op.collection!r}")
        if op.collection in spec.state and op.field == spec.state[op.collection].key:
            problems.add(path + ("set", "field"), f"cannot set the key field {op.field!r}")
        out.key, out.field, out.value = expr(("set", "key"), op.key), op.field, expr(("set", "value"), op.value)
    elif kind == "insert":
        collection(("insert", "collection"), effect.insert.collection)
        out.expr = expr(("insert", "record"), effect.insert.record)
    elif kind == "delete":
        collection(("delete", "collection"), effect.delete.collection)
        out.key = expr(("delete", "key"), effect.delete.key)
    else:
        out.expr = expr(("return",), effect.return_ if effect.return_ is not None else "null")
    return out


def _import_impl(problems: Problems, path: tuple, ref: str) -> Callable[..., Any] | None:
    parts = ref.split(":")
    if len(parts) != 3 or parts[0] != "python":
        problems.add(path, f"impl must be python:module:function, got {ref!r}")
        return None
    try:
        fn = getattr(importlib.import_module(parts[1]), parts[2])
    except (ImportError, AttributeError) as exc:
        problems.add(path, f"cannot import {parts[1]}:{parts[2]}: {exc}")
        return None
    if not callable(fn):
        problems.add(path, f"{ref} is not callable")
        return None
    return fn


def _compile_subtasks(spec: DomainSpec, problems: Problems) -> list[CompiledSubtask]:
    out: list[CompiledSubtask] = []
    seen: set[str] = set()
    tool_names = {t.name: t for t in spec.tools}
    for i, sub in enumerate(spec.subtasks):
        path = ("subtasks", i)
        if sub.id in seen:
            problems.add(path + ("id",), f"duplicate subtask id {sub.id!r}")
        seen.add(sub.id)
        bind = {}
        for name, source in sub.bind.items():
            if not NAME.match(name) or name in ("state", "prev", "args"):
                problems.add(path + ("bind", name), f"binding name {name!r} must be an identifier other than state/prev/args")
            e = _cel(problems, path + ("bind", name), source)
            _check_refs(spec, problems, path + ("bind", name), e, None)
            if e is not None:
                bind[name] = e
        ask = _template(problems, path + ("ask",), sub.ask)
        solution = []
        for j, step in enumerate(sub.solution):
            spath = path + ("solution", j)
            tool = tool_names.get(step.tool)
            if tool is None:
                problems.add(spath + ("tool",), f"unknown tool {step.tool!r} (tools: {', '.join(tool_names) or 'none'})")
                continue
            props = _props(tool.parameters)
            for arg in step.args:
                if arg not in props:
                    problems.add(spath + ("args", arg), f"tool {step.tool!r} has no argument {arg!r}")
            for req in tool.parameters.get("required", []) or []:
                if req not in step.args:
                    problems.add(spath + ("args",), f"missing required argument {req!r} of tool {step.tool!r}")
            args = {}
            for arg, value in step.args.items():
                if isinstance(value, str):
                    e = _cel(problems, spath + ("args", arg), value)
                    _check_refs(spec, problems, spath + ("args", arg), e, None)
                    args[arg] = e
                else:
                    args[arg] = value  # a constant
            solution.append((step.tool, args))
        answer = None
        if sub.answer is not None:
            answer = _cel(problems, path + ("answer",), sub.answer)
            _check_refs(spec, problems, path + ("answer",), answer, None)
        if ask is not None:
            out.append(CompiledSubtask(sub, bind, ask, solution, answer))
    return out


def _check_seeded_records(spec: DomainSpec, validators: dict[str, Any], problems: Problems) -> None:
    """Seed once and validate the records, so a seed that breaks its own schema fails at load."""
    state = seed_state(spec, 0)
    for name, records in state.data.items():
        validator = validators.get(name)
        if validator is None or name not in spec.seed:
            continue
        for record in list(records.values())[:50]:
            err = next(iter(validator.iter_errors(record)), None)
            if err is not None:
                field = err.absolute_path[0] if err.absolute_path else None
                path = ("seed", name, "fields", field) if field in spec.seed[name].fields else ("seed", name)
                problems.add(path, f"seeded record does not match the schema: {err.message}")
                break


def load_error_text(exc: LoadError) -> str:
    return str(exc)
