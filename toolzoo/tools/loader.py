"""Load a domain YAML file: shape (pydantic), then every semantic check, all reported at once.

Nothing is first checked at run time: CEL compiles, JSON Schemas are valid, every tool,
collection, field and argument that a solution, effect or seed names exists, names are
unique, ``impl`` functions import, and a sample seeded state satisfies the record schemas.
v2: defs are expanded (defs.py), every expression is checked against the schemas (checks.py:
names in scope, known functions, field paths, comparisons), write paths are walked through the
record schema (paths.py), and given records (fixtures.py) are validated one by one.
"""

from __future__ import annotations

import importlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from toolzoo.config import LoadError, Problem, Problems, SourceMap, format_path, parse_yaml, read_text, validate_model
from toolzoo.tools import checks, fixtures
from toolzoo.tools import paths as pathlib_
from toolzoo.tools.cel import CelError, Expr, Template, compile_expr, compile_template
from toolzoo.tools.cel_lib import BUILTIN_FUNCTIONS
from toolzoo.tools.defs import Def, DefError, expand, parse_defs, uses_defs
from toolzoo.tools.effects import CompiledEffect, CompiledPath, LocalRef, ToolLet
from toolzoo.tools.spec import NAME, DomainSpec, Effect, SubtaskSpec, ToolSpec
from toolzoo.tools.state import CEL_FUNCTIONS, generate, seed_state
from toolzoo.tools.validation import compiled_validator, schema_problem

_ARGS_REF = re.compile(r"\bargs\.([A-Za-z_][A-Za-z0-9_]*)")
_STATE_REF = re.compile(r"\bstate\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class CompiledTool:
    spec: ToolSpec
    validator: Any
    effects: list[CompiledEffect] = field(default_factory=list)
    impl: Callable[..., Any] | None = None
    lets: list[ToolLet] = field(default_factory=list)


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
    file = source.file if source else ""
    source = source or SourceMap(f"<{spec.domain}>")
    problems = Problems(source)
    if not NAME.match(spec.domain):
        problems.add(("domain",), f"domain name {spec.domain!r} must be an identifier")
    validators = _check_state(spec, problems)
    c = _Compiler(spec, problems, source, _compile_defs(spec, problems))
    tools = c.tools()
    subtasks = c.subtasks()
    problems.raise_if_any()
    base = Path(file).parent if file and not file.startswith("<") else Path.cwd()
    fixtures.load_given(spec, validators, problems, base)
    problems.raise_if_any()
    _check_seeded_records(spec, validators, problems)
    problems.raise_if_any()
    return Domain(spec, tools, subtasks, validators, file)


def _props(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def _check_state(spec: DomainSpec, problems: Problems) -> dict[str, Any]:
    validators: dict[str, Any] = {}
    for name, coll in spec.state.items():
        path = ("state", name)
        if not NAME.match(name):
            problems.add(path, f"collection name {name!r} must be an identifier")
        if msg := schema_problem(coll.schema_):
            problems.add(path + ("schema",), msg)
            continue
        if coll.key not in _props(coll.schema_):
            problems.add(path + ("key",), f"key field {coll.key!r} is not a property of the record schema")
        validators[name] = compiled_validator(coll.schema_)  # built once, fast when valid
    seeded: list[str] = []
    for name, seed in spec.seed.items():
        path = ("seed", name)
        if name not in spec.state:
            hint = "; given records go under seed.<collection>.records" if name in ("records", "from") else ""
            problems.add(path, f"unknown collection {name!r} (state has: {', '.join(spec.state) or 'none'}{hint})")
            continue
        props = _props(spec.state[name].schema_)
        if (seed.count or seed.fields) and spec.state[name].key not in seed.fields:
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


_RESERVED = {"state", "args", "prev", "self"}
_KEYWORDS = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
             "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
_LINE_COL = re.compile(r":(\d+):(\d+):")
_LOCAL_CHAIN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)((?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*")


def _compile_defs(spec: DomainSpec, problems: Problems) -> dict[str, Def]:
    defs, issues = parse_defs(spec.defs)
    for key, message in issues:
        problems.add(("defs", key), message)
    keys = {}
    for key in spec.defs:
        keys[str(key).split("(")[0].strip()] = key
    for name, d in defs.items():
        try:
            cel_syntax(d.body)
            expand(f"{name}({', '.join(d.params)})", defs)
        except DefError as exc:
            problems.add(("defs", keys.get(name, name)), str(exc))
        except CelError as exc:
            problems.add(("defs", keys.get(name, name)), f"CEL does not compile: {exc}")
    return defs


def cel_syntax(text: str) -> None:
    import cel as _cel

    try:
        _cel.compile(text)
    except Exception as exc:
        raise CelError(" ".join(str(exc).replace("<input>", "").split())) from None


class _Compiler:
    """Compiles a domain's tools and subtasks, checking every expression against the domain
    (names in scope, functions, field paths through the schemas) as it goes."""

    def __init__(self, spec: DomainSpec, problems: Problems, source: SourceMap, defs: dict[str, Def]):
        self.spec, self.problems, self.source, self.defs = spec, problems, source, defs
        self.state_schema = {"type": "object",
                             "properties": {n: checks.collection_map(c.schema_) for n, c in spec.state.items()}}
        self.functions = BUILTIN_FUNCTIONS | set(CEL_FUNCTIONS)
        self.last_schema: Any = None  # the schema of the last compiled expression, when it is a plain path

    # -- problems -----------------------------------------------------------------------------
    def add(self, path: tuple, message: str, line_in_text: int | None = None) -> None:
        if line_in_text is None or line_in_text <= 1:
            self.problems.add(path, message)
        else:
            line = self.source.line_in_value(path, line_in_text)
            self.problems.items.append(Problem(self.source.file, line, format_path(path), message))

    def _syntax(self, path: tuple, what: str, exc: Exception) -> None:
        m = _LINE_COL.search(str(exc))
        self.add(path, f"{what} does not compile: {exc}", int(m.group(1)) if m else None)

    # -- expressions --------------------------------------------------------------------------
    def cel(self, path: tuple, source: Any, scope: dict[str, Any], params: dict[str, Any] | None) -> Expr | None:
        """Compile (defs expanded) and check one expression; None when it has problems."""
        self.last_schema = None
        text = source
        if isinstance(source, str) and uses_defs(source, self.defs):
            try:
                cel_syntax(source)  # syntax errors are reported against what the author wrote
                text = expand(source, self.defs)
            except CelError as exc:
                self._syntax(path, "CEL", exc)
                return None
            except DefError as exc:
                self.add(path, str(exc))
                return None
        try:
            expr = compile_expr(text)
        except CelError as exc:
            self._syntax(path, "CEL", exc)
            return None
        self.check(path, expr, scope, params, exact=text == source)
        m = _LOCAL_CHAIN.fullmatch(text) if params is not None else None
        if m and m.group(1) in scope and m.group(1) not in ("args", "state"):
            return LocalRef(expr, m.group(1), tuple(f.strip() for f in m.group(2).split(".")[1:]))
        return expr

    def check(self, path: tuple, expr: Expr, scope: dict[str, Any], params: dict[str, Any] | None, exact: bool) -> None:
        text = expr.source
        _check_refs(self.spec, self.problems, path, expr, set(_props(params)) if params is not None else None)
        try:
            names, functions = checks.references(text)
        except Exception:  # compile_expr accepted it; nothing more to learn here
            return
        known = set(scope) | {"state"}

        def line_of(pattern: str) -> int | None:
            m = re.search(pattern, text) if exact else None
            return text[: m.start()].count("\n") + 1 if m else None

        for name in sorted(names - known):
            self.add(path, f"unknown name {name!r} (known here: {', '.join(sorted(known - {'state'})) or 'none'}; "
                           f"state.<collection> for the state)", line_of(rf"(?<![.\w]){re.escape(name)}\b"))
        for fn in sorted(functions - self.functions):
            hint = f"; defs: {', '.join(sorted(self.defs))}" if self.defs else ""
            self.add(path, f"unknown function {fn!r} (see docs/domains.md for the CEL library{hint})",
                     line_of(rf"\b{re.escape(fn)}\s*\("))
        roots = {"state": self.state_schema, **scope}
        if params is not None:
            roots["args"] = params
        findings, whole = checks.walk(text, roots, frozenset({"args"}))
        for f in findings:
            self.add(path, f.message, text[: f.offset].count("\n") + 1 if exact else None)
        self.last_schema = whole

    def template(self, path: tuple, source: Any, scope: dict[str, Any], params: dict[str, Any] | None) -> Template | None:
        try:
            t = compile_template(source)
        except CelError as exc:
            self.add(path, f"template does not compile: {exc}")
            return None
        parts: list[str | Expr] = []
        for part in t.parts:
            if isinstance(part, Expr):
                part = self.cel(path, part.source, scope, params)
                if part is None:
                    return None
            parts.append(part)
        return Template(t.source, tuple(parts))

    def constant_fits(self, path: tuple, expr: Expr | None, schema: Any) -> None:
        """A constant value written where the schema says otherwise is a load error."""
        if expr is None or not isinstance(schema, dict) or not schema:
            return
        try:
            names, functions = checks.references(expr.source)
            if names or not functions <= {"-_"}:  # only a literal (maybe negated) is a constant
                return
            value = expr.eval({})
        except Exception:
            return
        try:
            err = next(iter(compiled_validator(schema).iter_errors(value)), None)
        except Exception:  # an invalid schema is reported where it is declared
            return
        if err is not None:
            self.add(path, f"the value {value!r} does not fit the field's schema: {err.message}")

    # -- tools --------------------------------------------------------------------------------
    def tools(self) -> dict[str, CompiledTool]:
        tools: dict[str, CompiledTool] = {}
        for i, tool in enumerate(self.spec.tools):
            path = ("tools", i)
            if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", tool.name):
                self.problems.add(path + ("name",), f"tool name {tool.name!r} must be 1-64 of [A-Za-z0-9_.-]")
            if tool.name in tools:
                self.problems.add(path + ("name",), f"duplicate tool name {tool.name!r}")
            if msg := schema_problem(tool.parameters):
                self.problems.add(path + ("parameters",), msg)
                validator, params = None, {}
            else:
                if tool.parameters.get("type") != "object":
                    self.problems.add(path + ("parameters", "type"), "tool parameters must be a JSON Schema of type object")
                validator, params = compiled_validator(tool.parameters), tool.parameters
            compiled = CompiledTool(tool, validator)
            scope: dict[str, Any] = {"args": params}
            for name, src in (tool.let or {}).items():
                lpath = path + ("let", name)
                if not self.name_ok(lpath, name, "let"):
                    continue
                e = self.cel(lpath, src, scope, params)
                if e is not None:
                    compiled.lets.append(ToolLet(name, e, frozenset(e.names() & {x.name for x in compiled.lets})))
                scope[name] = self.last_schema or checks.UNKNOWN
            tool_lets = frozenset(tool.let or {})
            compiled.effects = self.effects(path + ("effects",), tool.effects or [], scope, params, tool_lets)
            if tool.impl is not None:
                compiled.impl = _import_impl(self.problems, path + ("impl",), tool.impl)
            tools.setdefault(tool.name, compiled)
        return tools

    def name_ok(self, path: tuple, name: str, what: str) -> bool:
        if not NAME.match(str(name)) or name in _RESERVED or name in _KEYWORDS:
            self.problems.add(path, f"{what} name {name!r} must be an identifier other than {', '.join(sorted(_RESERVED))}")
            return False
        if name in self.defs:
            self.problems.add(path, f"{what} name {name!r} is also a def")
            return False
        return True

    def effects(self, path: tuple, effects: list[Effect], scope: dict[str, Any], params: dict[str, Any],
                tool_lets: frozenset[str]) -> list[CompiledEffect]:
        scope = dict(scope)  # lets of this block stay in it
        return [self.effect(path + (j,), e, scope, params, tool_lets) for j, e in enumerate(effects)]

    def effect(self, path: tuple, effect: Effect, scope: dict[str, Any], params: dict[str, Any],
               tool_lets: frozenset[str]) -> CompiledEffect:
        kind = effect.kind
        out = CompiledEffect(kind, where=format_path(path[2:] + (kind,)))
        spec = self.spec

        def expr(sub: tuple, source: Any) -> Expr | None:
            return self.cel(path + sub, source, scope, params)

        def collection(sub: tuple, name: str) -> None:
            if name not in spec.state:
                self.problems.add(path + sub, f"unknown collection {name!r} (state has: {', '.join(spec.state) or 'none'})")
            out.collection = name

        if kind == "require":
            out.expr = expr(("require",), effect.require)
            if effect.error is not None:
                out.error = self.template(path + ("error",), effect.error, scope, params)
        elif kind == "let":
            for name, src in effect.let.items():
                if self.name_ok(path + ("let", name), name, "let"):
                    e = expr(("let", name), src)
                    if e is not None:
                        out.lets.append((name, e))
                    scope[name] = self.last_schema or checks.UNKNOWN
        elif kind == "set" and effect.set.path is None:
            op = effect.set
            collection(("set", "collection"), op.collection)
            props = _props(spec.state[op.collection].schema_) if op.collection in spec.state else {}
            if op.collection in spec.state and op.field not in props:
                self.problems.add(path + ("set", "field"), f"unknown field {op.field!r} of collection {op.collection!r}")
            if op.collection in spec.state and op.field == spec.state[op.collection].key:
                self.problems.add(path + ("set", "field"), f"cannot set the key field {op.field!r}")
            out.key, out.field, out.value = expr(("set", "key"), op.key), op.field, expr(("set", "value"), op.value)
            self.constant_fits(path + ("set", "value"), out.value, props.get(op.field))
        elif kind in ("set", "append", "remove", "put") or (kind == "delete" and effect.delete.path is not None):
            op = getattr(effect, kind)
            out.path, target = self.path(path + (kind, "path"), op.path, scope, params, kind)
            if kind == "put":
                out.key = expr(("put", "key"), op.key)
                target = (target or {}).get("additionalProperties") if isinstance(target, dict) else None
            if kind == "append" and isinstance(target, dict):
                target = target.get("items")
            if kind in ("set", "append", "put"):
                out.value = expr((kind, "value"), op.value)
                self.constant_fits(path + (kind, "value"), out.value, target)
        elif kind == "insert":
            collection(("insert", "collection"), effect.insert.collection)
            out.expr = expr(("insert", "record"), effect.insert.record)
        elif kind == "delete":
            collection(("delete", "collection"), effect.delete.collection)
            out.key = expr(("delete", "key"), effect.delete.key)
        elif kind == "if":
            out.expr = expr(("if",), effect.if_)
            out.then = self.effects(path + ("then",), effect.then or [], scope, params, tool_lets)
            out.else_ = self.effects(path + ("else",), effect.else_ or [], scope, params, tool_lets)
        elif kind == "for_each":
            out.expr = expr(("for_each",), effect.for_each)
            items = self.last_schema
            out.as_ = effect.as_
            inner = dict(scope)
            if self.name_ok(path + ("as",), effect.as_, "loop variable"):
                element = items.get("items", checks.UNKNOWN) if isinstance(items, dict) and pathlib_.is_kind(items, "array") else checks.UNKNOWN
                inner[effect.as_], inner[f"{effect.as_}_index"] = element, {"type": "integer"}
            out.do = self.effects(path + ("do",), effect.do or [], inner, params, tool_lets)
        else:
            out.expr = expr(("return",), effect.return_ if effect.return_ is not None else "null")
        out.uses = frozenset(n for e in _exprs_of(out) for n in e.names() & tool_lets)
        return out

    def path(self, ppath: tuple, text: str, scope: dict[str, Any], params: dict[str, Any], op: str
             ) -> tuple[CompiledPath | None, Any]:
        """Parse and check a write path; returns it (None on problems) and the schema it leads to."""
        try:
            parsed = pathlib_.parse(text)
        except pathlib_.PathError as exc:
            self.problems.add(ppath, str(exc))
            return None, None
        coll = self.spec.state.get(parsed.collection)
        if coll is None:
            self.problems.add(ppath, f"unknown collection {parsed.collection!r} in path {text!r} "
                                     f"(state has: {', '.join(self.spec.state) or 'none'})")
            return None, None
        ok = True
        key = self.cel(ppath, parsed.key, scope, params)
        schema: Any = coll.schema_
        steps: list[tuple[str | None, Expr | None]] = []
        for step in parsed.steps:
            if step.field is not None:
                steps.append((step.field, None))
            else:
                e = self.cel(ppath, step.index, scope, params)
                ok = ok and e is not None
                steps.append((None, e))
            if schema is not None:
                child, problem = pathlib_.child_schema(schema, step)
                if problem:
                    self.problems.add(ppath, f"{text}: {problem}")
                    ok, schema = False, None
                else:
                    schema = child
        if parsed.steps and parsed.steps[0].field == coll.key and op in ("set", "remove", "delete"):
            self.problems.add(ppath, f"{text}: cannot change the key field {coll.key!r}")
            ok = False
        if not parsed.steps and op in ("append", "put"):
            self.problems.add(ppath, f"{text}: {op} needs a {'list' if op == 'append' else 'map'} inside a record")
            ok = False
        if op == "append" and pathlib_.is_kind(schema, "array") is False:
            self.problems.add(ppath, f"{text}: append needs a list, the schema says {schema.get('type')}")
            ok = False
        if op == "put" and pathlib_.is_kind(schema, "object") is False:
            self.problems.add(ppath, f"{text}: put needs a map, the schema says {schema.get('type')}")
            ok = False
        if not ok or key is None:
            return None, schema
        return CompiledPath(text, parsed.collection, key, tuple(steps)), schema

    # -- subtasks -----------------------------------------------------------------------------
    def subtasks(self) -> list[CompiledSubtask]:
        spec, problems = self.spec, self.problems
        out: list[CompiledSubtask] = []
        seen: set[str] = set()
        tool_names = {t.name: t for t in spec.tools}
        for i, sub in enumerate(spec.subtasks):
            path = ("subtasks", i)
            if sub.id in seen:
                problems.add(path + ("id",), f"duplicate subtask id {sub.id!r}")
            seen.add(sub.id)
            scope = {name: checks.UNKNOWN for name in sub.bind} | {"prev": checks.UNKNOWN}
            bind = {}
            for name, source in sub.bind.items():
                if not NAME.match(name) or name in ("state", "prev", "args"):
                    problems.add(path + ("bind", name), f"binding name {name!r} must be an identifier other than state/prev/args")
                e = self.cel(path + ("bind", name), source, scope, None)
                if e is not None:
                    bind[name] = e
            ask = self.template(path + ("ask",), sub.ask, scope, None)
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
                    args[arg] = self.cel(spath + ("args", arg), value, scope, None) if isinstance(value, str) else value
                solution.append((step.tool, args))
            answer = None
            if sub.answer is not None:
                answer = self.cel(path + ("answer",), sub.answer, scope, None)
            if ask is not None:
                out.append(CompiledSubtask(sub, bind, ask, solution, answer))
        return out


def _exprs_of(eff: CompiledEffect) -> list[Expr]:
    out = [e for e in (eff.expr, eff.key, eff.value) if e is not None]
    out += [e for _, e in eff.lets if e is not None]
    if eff.error is not None:
        out += eff.error.exprs()
    if eff.path is not None:
        out += [eff.path.key, *(e for _, e in eff.path.steps if e is not None)]
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


def _check_refs(spec: DomainSpec, problems: Problems, path: tuple, expr: Expr | None, params: set[str] | None) -> None:
    if expr is None:
        return
    text = expr.source
    for coll in sorted(set(_STATE_REF.findall(text))):
        if coll not in spec.state:
            problems.add(path, f"unknown collection state.{coll}")
    if params is not None:
        for arg in sorted(set(_ARGS_REF.findall(text))):
            if arg not in params:
                problems.add(path, f"unknown argument args.{arg} (parameters: {', '.join(sorted(params)) or 'none'})")


def _check_seeded_records(spec: DomainSpec, validators: dict[str, Any], problems: Problems) -> None:
    """Seed once and validate the records, so a seed that breaks its own schema fails at load."""
    state = seed_state(spec, 0)
    for name, seed in spec.seed.items():
        if seed._given and seed.count:
            key_field = spec.state[name].key
            given = {str(r[key_field]) for r in seed._given}
            rng = random.Random(f"{spec.domain}:{name}:0")
            clash = [k for k in (str(generate(seed.fields[key_field], i, rng, state.data)) for i in range(seed.count))
                     if k in given] if key_field in seed.fields else []
            if clash:
                problems.add(("seed", name, "fields", key_field),
                             f"generated key {clash[0]!r} is also a given record's key (use a distinct pattern)")
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
