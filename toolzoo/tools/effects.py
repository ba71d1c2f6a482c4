"""Compiled effects and their execution: require, let, writes (v1 and nested paths), if,
for_each, return — all or nothing per call.

Every write replaces one whole record (copy-on-write along the written path, see paths.py),
is checked against the collection's schema first, and leaves an undo entry
``(collection, key, old record or None)``; the runtime rolls the entries back on any failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any

from toolzoo.tools import paths
from toolzoo.tools.cel import CelError, Expr, Template

MAX_ITERATIONS = 1_000  # for_each iterations per call, all loops together
_UNSET = object()


def _shared(expr: Any, env: Any) -> Any:
    """An effect's value; a record read by key may be the state's own object (effects never
    change a value in place: every write copies along its path)."""
    return expr.eval(env, share=True) if type(expr) is Expr else expr.eval(env)


class ToolError(Exception):
    """A tool call failed in a way the agent should see (becomes an MCP tool error)."""


class RequirementFailed(ToolError):
    """A ``require`` effect was false: the domain's own precondition refused the call (the task
    generator reads this as "this template does not apply here", anything else as a bug)."""


@dataclass
class CompiledPath:
    source: str
    collection: str
    key: Expr
    steps: tuple[tuple[str | None, Expr | None], ...]  # (.field, None) or (None, [CEL])


@dataclass
class CompiledEffect:
    kind: str
    where: str = ""  # "effects[3].do[0].set", for run-time messages
    expr: Expr | None = None  # require / return / insert record / if / for_each
    error: Template | None = None
    collection: str = ""  # v1 set / insert / delete
    key: Expr | None = None  # v1 set / delete; put's map key
    field: str = ""
    value: Expr | None = None
    path: CompiledPath | None = None  # v2 writes
    lets: list[tuple[str, Expr]] = _field(default_factory=list)
    then: list[CompiledEffect] = _field(default_factory=list)
    else_: list[CompiledEffect] = _field(default_factory=list)
    do: list[CompiledEffect] = _field(default_factory=list)
    as_: str = ""
    uses: frozenset[str] = frozenset()  # tool-level let names this effect reads


@dataclass(frozen=True)
class LocalRef:
    """An expression that is just a let or loop variable with a field chain (``order``,
    ``item.price``): read in Python. Such values came out of CEL (or were copied from the
    state) during this call, so they are already what CEL would hand back; anything unusual
    takes the CEL way, so errors read as CEL's."""

    expr: Expr
    name: str
    fields: tuple[str, ...]

    @property
    def source(self) -> str:
        return self.expr.source

    def names(self) -> set[str]:
        return self.expr.names()

    def eval(self, env: Any) -> Any:
        variables = env.variables
        if self.name not in variables:
            return self.expr.eval(env)
        value = variables[self.name]
        for f in self.fields:
            if not isinstance(value, dict):
                return self.expr.eval(env)
            value = value.get(f)  # a missing field reads as null, as in CEL here
        return value


@dataclass
class ToolLet:
    name: str
    expr: Expr
    uses: frozenset[str]  # earlier tool-level lets it reads


def run_effects(state: Any, validators: dict[str, Any], tool_name: str, lets: list[ToolLet],
                effects: list[CompiledEffect], args: dict[str, Any], undo: list,
                max_iterations: int | None = None) -> Any:
    """Run a tool's effects; returns the value of the last ``return`` executed. Raises
    ToolError/CelError with the state possibly changed: the caller rolls back with ``undo``."""
    variables: dict[str, Any] = {"args": args}
    failed: dict[str, str] = {}
    run = _Run(state, validators, tool_name, undo, failed, max_iterations or MAX_ITERATIONS)
    # Tool-level lets are evaluated once, on the state as the call found it. One that fails
    # (a record that does not exist yet) is an error only where it is used, so a `require`
    # before that use still gives its own message.
    for let in lets:
        bad = next((n for n in let.uses if n in failed), None)
        if bad is not None:
            failed[let.name] = failed[bad]
            continue
        try:
            variables[let.name] = _shared(let.expr, run.env(variables))
        except CelError as exc:
            failed[let.name] = f"let {let.name}: {exc}"
    run.block(effects, variables)
    return run.result


class _Run:
    def __init__(self, state: Any, validators: dict[str, Any], tool: str, undo: list, failed: dict[str, str],
                 max_iterations: int):
        self.state, self.validators, self.tool, self.undo = state, validators, tool, undo
        self.failed, self.max_iterations = failed, max_iterations
        self.iterations = 0
        self.result: Any = None
        self._introduced: list[list[str]] = []
        self._env: Any = None

    def env(self, variables: dict[str, Any]) -> Any:
        """The evaluation env over ``variables`` itself (one dict serves the whole call, and each
        env is used at once, before any binding changes): made once per call, not per effect."""
        env = self._env
        if env is None or env.variables is not variables:
            env = self._env = self.state.cel_context()
            env.variables = variables
        return env

    def block(self, effects: list[CompiledEffect], variables: dict[str, Any]) -> None:
        """Run a list of effects. One variables dict serves the whole call: a `let` that rebinds
        a name from outside the block updates it (an accumulator in a loop, a value chosen in
        an `if`), while a name first bound inside the block is dropped when the block ends."""
        introduced: list[str] = []
        self._introduced.append(introduced)
        try:
            for eff in effects:
                if eff.uses and self.failed:
                    bad = next((n for n in eff.uses if n in self.failed), None)
                    if bad is not None:
                        raise ToolError(f"{eff.where}: {self.failed[bad]}")
                fn = _DISPATCH.get(eff.kind)
                if fn is None:
                    getattr(self, "_" + eff.kind)(eff, variables)
                else:
                    fn(self, eff, variables)
        finally:
            self._introduced.pop()
            for name in introduced:
                variables.pop(name, None)

    # -- control and values -------------------------------------------------------------------
    def _require(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        env = self.env(variables)
        if eff.expr.eval(env) is not True:
            if eff.error is not None:
                raise RequirementFailed(eff.error.render(env))
            raise RequirementFailed(f"requirement failed: {eff.expr.source}")

    def _return(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        self.result = eff.expr.eval(self.env(variables))

    def _let(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        for name, expr in eff.lets:
            value = _shared(expr, self.env(variables))  # effects never change a value in place
            if name not in variables:
                self._introduced[-1].append(name)
            variables[name] = value
            self.failed.pop(name, None)  # a re-bound name is no longer the failed tool-level let

    def _if(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        cond = eff.expr.eval(self.env(variables))
        if not isinstance(cond, bool):
            raise ToolError(f"{eff.where}: the condition must be true or false, got {type(cond).__name__}")
        self.block(eff.then if cond else eff.else_, variables)

    def _for_each(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        items = _shared(eff.expr, self.env(variables))
        if isinstance(items, dict):
            items = sorted(items)  # a map is iterated by its keys, in order (as CEL macros do)
        if not isinstance(items, list):
            raise ToolError(f"{eff.where}: for_each needs a list, got {type(items).__name__}")
        if self.iterations + len(items) > self.max_iterations:
            raise ToolError(f"{eff.where}: for_each over {len(items)} items exceeds the limit of "
                            f"{self.max_iterations} iterations per call of {self.tool}")
        self.iterations += len(items)
        names = (eff.as_, f"{eff.as_}_index")
        saved = [variables.get(n, _UNSET) for n in names]
        try:
            for i, item in enumerate(items):
                variables[names[0]], variables[names[1]] = item, i
                self.block(eff.do, variables)
        finally:  # the loop variable exists only inside the loop
            for n, old in zip(names, saved):
                if old is _UNSET:
                    variables.pop(n, None)
                else:
                    variables[n] = old

    # -- writes -------------------------------------------------------------------------------
    def _key(self, expr: Expr, env: Any, where: str) -> str:
        key = expr.eval(env)
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise ToolError(f"{where}: a record key must be text, got {type(key).__name__}")
        return str(key)

    def _existing(self, collection: str, key: str) -> dict[str, Any]:
        record = self.state.data[collection].get(key)
        if record is None:
            raise ToolError(f"no {collection} record {key!r}")
        return record

    def _write(self, collection: str, key: str, record: dict[str, Any] | None, where: str) -> None:
        """Replace (or with None delete) one record, schema-checked, with an undo entry."""
        if record is not None:
            self._check(collection, record, where)
        self.undo.append((collection, key, self.state.data[collection].get(key)))
        if record is None:
            self.state.delete(collection, key)
        else:
            self.state.put(collection, key, record)

    def _check(self, collection: str, record: Any, where: str) -> None:
        if not isinstance(record, dict):
            raise ToolError(f"{where}: a {collection} record must be a map, got {type(record).__name__}")
        validator = self.validators.get(collection)
        if validator is None:
            return
        err = next(iter(validator.iter_errors(record)), None)
        if err is not None:
            at = ".".join(str(p) for p in err.absolute_path) or "record"
            raise ToolError(f"{where}: {collection} {at}: {err.message}")

    def _resolve(self, p: CompiledPath, env: Any, where: str) -> tuple[str, list[Any]]:
        key = self._key(p.key, env, where)
        steps: list[Any] = []
        for name, index in p.steps:
            steps.append(name if index is None else index.eval(env))
        return key, steps

    def _path_op(self, eff: CompiledEffect, variables: dict[str, Any], op: str) -> None:
        env = self.env(variables)
        p = eff.path
        coll = p.collection
        key, steps = self._resolve(p, env, eff.where)
        key_field = self.state.keys.get(coll)
        describe = lambda: f"{eff.where}: {paths.describe(coll, key, steps)}"  # noqa: E731
        try:
            if op == "put":
                map_key = eff.key.eval(env)
                if not isinstance(map_key, str):
                    raise ToolError(f"{describe()}: a map key must be text, got {type(map_key).__name__}")
                target = paths.get(self._existing(coll, key), steps, describe)
                if not isinstance(target, dict):
                    raise ToolError(f"{describe()}: put needs a map, found a {type(target).__name__}")
                steps, op = [*steps, map_key], "set"
            value = _shared(eff.value, env) if eff.value is not None else None
            if not steps:  # the whole record
                if op == "append":
                    raise ToolError(f"{describe()}: append needs a list inside a record")
                if op == "remove":
                    self._existing(coll, key)
                    self._write(coll, key, None, eff.where)
                    return
                if not isinstance(value, dict):
                    raise ToolError(f"{describe()}: a record must be a map, got {type(value).__name__}")
                if key_field and value.get(key_field, key) != key:
                    raise ToolError(f"{describe()}: the record's {key_field} is {value.get(key_field)!r}, not {key!r}")
                record = {key_field: key, **value} if key_field and key_field not in value else value
                self._write(coll, key, record, eff.where)
                return
            if key_field and steps[0] == key_field:
                raise ToolError(f"{describe()}: cannot change the key field {key_field!r}")
            record = paths.apply(self._existing(coll, key), steps, op, value, describe)
        except paths.PathError as exc:
            raise ToolError(str(exc)) from None
        self._write(coll, key, record, eff.where)

    def _set(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        if eff.path is not None:
            return self._path_op(eff, variables, "set")
        env = self.env(variables)
        key = self._key(eff.key, env, eff.where)
        record = dict(self._existing(eff.collection, key))
        record[eff.field] = _shared(eff.value, env)
        self._write(eff.collection, key, record, eff.where)

    def _append(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        self._path_op(eff, variables, "append")

    def _remove(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        self._path_op(eff, variables, "remove")

    def _put(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        self._path_op(eff, variables, "put")

    def _delete(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        if eff.path is not None:
            return self._path_op(eff, variables, "remove")
        key = self._key(eff.key, self.env(variables), eff.where)
        self._existing(eff.collection, key)
        self._write(eff.collection, key, None, eff.where)

    def _insert(self, eff: CompiledEffect, variables: dict[str, Any]) -> None:
        record = eff.expr.eval(self.env(variables))
        if not isinstance(record, dict):
            raise ToolError(f"{eff.where}: record must be a map, got {type(record).__name__}")
        key_field = self.state.keys[eff.collection]
        if key_field not in record:
            raise ToolError(f"{eff.where}: record has no key field {key_field!r}")
        key = str(record[key_field])
        if key in self.state.data[eff.collection]:
            raise ToolError(f"{eff.collection} {key!r} already exists")
        self._write(eff.collection, key, record, eff.where)


_DISPATCH = {name[1:]: fn for name, fn in vars(_Run).items() if name.startswith("_") and not name.startswith("__")
             and callable(fn)}  # effect kind -> method: one dict lookup per effect instead of getattr on a built name
