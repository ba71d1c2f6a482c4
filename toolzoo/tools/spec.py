"""The domain YAML format as pydantic models (one file = one domain = one MCP server).

These models check shape only; :mod:`toolzoo.tools.loader` adds the semantic checks (CEL
compiles, names exist, JSON Schemas are valid) and reports every problem with its line.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CollectionSpec(_Strict):
    key: str
    schema_: dict[str, Any] = Field(alias="schema", default_factory=lambda: {"type": "object"})

    @model_validator(mode="before")
    @classmethod
    def _hint(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("records" in data or "from" in data):
            raise ValueError("given records go under `seed.<collection>.records:` (or `from:`), not under `state`")
        return data


class FieldGen(_Strict):
    """How one field of a seeded record is generated; exactly one generator."""

    pattern: str | None = None  # Python format string over i, the 0-based record index
    choice: list[Any] | None = None
    int_: list[int] | None = Field(default=None, alias="int")  # [lo, hi] inclusive
    ref: str | None = None  # a key of an already seeded collection
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict):
            present = [k for k in ("pattern", "choice", "int", "ref", "value") if k in data]
            if "records" in data or "from" in data:
                raise ValueError("given records go under seed.<collection>.records (or from:), not under fields")
            if len(present) != 1:
                raise ValueError(f"needs exactly one of pattern, choice, int, ref, value (got {present or 'none'})")
        return data

    @field_validator("int_")
    @classmethod
    def _range(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 2 or v[0] > v[1]):
            raise ValueError("int takes [lo, hi] with lo <= hi")
        return v

    @field_validator("choice")
    @classmethod
    def _nonempty(cls, v: list[Any] | None) -> list[Any] | None:
        if v is not None and not v:
            raise ValueError("choice needs at least one value")
        return v


class SelectSpec(_Strict):
    """A seed-dependent subset (and order) of a collection's given records."""

    count: int | None = Field(default=None, ge=0)  # how many given records (default: all)
    shuffle: bool = False  # False: the chosen records keep their order in the fixture


class SeedSpec(_Strict):
    """How a collection starts: given records (inline ``records`` and/or a ``from`` JSON file)
    and/or ``count`` generated records (v1: ``count`` + ``fields``)."""

    count: int = Field(default=0, ge=0, le=1_000_000)
    fields: dict[str, FieldGen] = Field(default_factory=dict)
    records: list[dict[str, Any]] | None = None
    from_: str | None = Field(default=None, alias="from")  # data/FILE.json|jsonl, relative to the domain file
    at: str | None = None  # dotted key path into the JSON document
    select: SelectSpec | None = None
    # The given records, resolved and checked by the loader (inline and from the data file).
    _given: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _hints(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("seed.<collection> takes a map: given records go under seed.<collection>.records "
                             "(or from: FILE), generated ones under count + fields")
        if isinstance(data, dict):
            if "at" in data and "from" not in data:
                raise ValueError("`at` only goes with `from`")
            if "select" in data and "from" not in data and "records" not in data:
                raise ValueError("`select` chooses among given records: add `records:` or `from:`")
            if "count" in data and "fields" not in data:
                raise ValueError("generated records (`count`) need `fields`")
        return data

    @property
    def given(self) -> bool:
        return self.records is not None or self.from_ is not None


class SetOp(_Strict):
    """v1: {collection, key, field, value}; v2: {path, value} (a nested path write)."""

    collection: str | None = None
    key: str | None = None
    field: str | None = None
    path: str | None = None
    value: Any

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any) -> Any:
        if isinstance(data, dict):
            v1 = [k for k in ("collection", "key", "field") if k in data]
            if "path" in data and v1:
                raise ValueError(f"give either `path` or collection/key/field, not both (got path and {v1})")
            if "path" not in data and len(v1) != 3:
                raise ValueError("set needs `path` (v2) or all of collection, key, field (v1)")
        return data


class InsertOp(_Strict):
    collection: str
    record: str  # CEL map


class DeleteOp(_Strict):
    """v1: {collection, key} (a whole record); v2: {path} (a record, map entry, list element or field)."""

    collection: str | None = None
    key: str | None = None
    path: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "path" in data and ("collection" in data or "key" in data):
                raise ValueError("give either `path` or collection/key, not both")
            if "path" not in data and not ("collection" in data and "key" in data):
                raise ValueError("delete needs `path` (v2) or collection and key (v1)")
        return data


class PathOp(_Strict):
    path: str


class PathValueOp(_Strict):
    path: str
    value: Any


class PutOp(_Strict):
    path: str  # a map
    key: Any  # CEL
    value: Any  # CEL


EFFECT_KINDS = ("require", "let", "set", "insert", "delete", "append", "remove", "put", "if", "for_each", "return")
WRITE_EFFECTS = ("set", "insert", "delete", "append", "remove", "put")
# Keys that go with an action key, not actions themselves.
_COMPANIONS = {"error": "require", "then": "if", "else": "if", "as": "for_each", "do": "for_each"}
_FIELD = {"return": "return_", "if": "if_"}


class Effect(_Strict):
    """One step of a tool's effects; exactly one action key (``error`` goes with ``require``,
    ``then``/``else`` with ``if``, ``as``/``do`` with ``for_each``)."""

    require: str | None = None
    error: str | None = None
    let: dict[str, Any] | None = None  # name -> CEL, evaluated here (sees earlier writes)
    set: SetOp | None = None
    insert: InsertOp | None = None
    delete: DeleteOp | None = None
    append: PathValueOp | None = None
    remove: PathOp | None = None
    put: PutOp | None = None
    if_: Any = Field(default=None, alias="if")  # CEL bool
    then: list[Effect] | None = None
    else_: list[Effect] | None = Field(default=None, alias="else")
    for_each: Any = None  # CEL list
    as_: str | None = Field(default=None, alias="as")
    do: list[Effect] | None = None
    return_: Any = Field(default=None, alias="return")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict):
            present = [k for k in EFFECT_KINDS if k in data]
            if len(present) != 1:
                raise ValueError(f"an effect needs exactly one of {', '.join(EFFECT_KINDS)} (got {present or 'none'})")
            for companion, owner in _COMPANIONS.items():
                if companion in data and owner not in data:
                    raise ValueError(f"`{companion}` only goes with `{owner}`")
            if "if" in data and "then" not in data:
                raise ValueError("`if` needs `then` (a list of effects)")
            if "for_each" in data and ("as" not in data or "do" not in data):
                raise ValueError("`for_each` needs `as` (the loop variable) and `do` (a list of effects)")
        return data

    @property
    def kind(self) -> str:
        for k in EFFECT_KINDS:
            if getattr(self, _FIELD.get(k, k)) is not None:
                return k
        return "return"  # `return: null` is a valid (null-returning) effect

    def children(self) -> list[Effect]:
        """The nested effects of an ``if`` or ``for_each``."""
        return [*(self.then or []), *(self.else_ or []), *(self.do or [])]

    def writes(self) -> bool:
        return self.kind in WRITE_EFFECTS or any(c.writes() for c in self.children())


class DefSpec(_Strict):
    """A domain-level named expression with parameters, expanded where it is called."""

    params: list[str] = Field(default_factory=list)
    expr: str


class ToolSpec(_Strict):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    let: dict[str, Any] | None = None  # name -> CEL, evaluated in order at the start of a call
    effects: list[Effect] | None = None
    impl: str | None = None  # python:module:function
    simulate: Literal["llm"] | None = None
    # MCP's readOnlyHint. Declared, it decides read vs mutation for a simulated tool (else its
    # name and description do) and is checked against the tool's effects at load.
    read_only: bool | None = None

    @model_validator(mode="after")
    def _read_only_holds(self) -> ToolSpec:
        if self.read_only and self._writes:
            j = self._writes[0]
            raise ValueError(f"read_only: true but effects[{j}] is a `{self.effects[j].kind}`")
        return self

    @property
    def _writes(self) -> list[int]:
        """Indices of the effects that change state."""
        return [j for j, e in enumerate(self.effects or []) if e.writes()]

    @property
    def read_only_hint(self) -> bool | None:
        """What the MCP listing announces: the declaration, else what the effects show (an
        ``impl`` or simulated tool without one: unknown)."""
        if self.read_only is not None:
            return self.read_only
        return None if self.effects is None else not self._writes

    @property
    def executors(self) -> list[str]:
        return [k for k in ("effects", "impl", "simulate") if getattr(self, k) is not None]

    @property
    def simulated(self) -> bool:
        return self.simulate is not None


class SolutionStep(_Strict):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)  # values: CEL (text) or constants


class SubtaskSpec(_Strict):
    id: str
    bind: dict[str, str] = Field(default_factory=dict)
    ask: str
    solution: list[SolutionStep] = Field(default_factory=list)
    answer: str | None = None

    @property
    def uses_prev(self) -> bool:
        return any(re.search(r"\bprev\b", e) for e in [*self.bind.values(), self.ask])


class SourceSpec(_Strict):
    """A third-party MCP server as the tool source (run inside a sandbox)."""

    command: list[str] | None = None
    url: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one(self) -> SourceSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("source needs exactly one of command, url")
        return self


class DomainSpec(_Strict):
    domain: str
    category: str = "general"
    description: str = ""
    version: str = "1"
    defs: dict[str, DefSpec | str] = Field(default_factory=dict)  # "name" / "name(a, b)": CEL, or {params, expr}
    state: dict[str, CollectionSpec] = Field(default_factory=dict)
    seed: dict[str, SeedSpec] = Field(default_factory=dict)
    tools: list[ToolSpec] = Field(default_factory=list)
    subtasks: list[SubtaskSpec] = Field(default_factory=list)
    source: SourceSpec | None = None
    system_prompt: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _extension_keys(cls, data: Any) -> Any:
        # Top-level `x-...` keys are ignored: a place for YAML anchors (`x-item: &item {...}`,
        # reused with `<<: *item` or `*item`), as in docker-compose files.
        if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("x-") for k in data):
            return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
        return data

    @model_validator(mode="after")
    def _executors(self) -> DomainSpec:
        # A tool runs one way: effects, impl or simulation. A `source` domain's tools are run
        # by the third-party server, so they declare none.
        for i, tool in enumerate(self.tools):
            kinds = tool.executors
            if self.source is not None and kinds and kinds != ["simulate"]:
                raise ValueError(f"tools[{i}] ({tool.name}): a source domain's tools are run by the source server; "
                                 f"remove {kinds}")
            if self.source is None and len(kinds) != 1:
                raise ValueError(f"tools[{i}] ({tool.name}): a tool needs exactly one of effects, impl, simulate "
                                 f"(got {kinds or 'none'})")
        return self

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)
