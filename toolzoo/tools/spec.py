"""The domain YAML format as pydantic models (one file = one domain = one MCP server).

These models check shape only; :mod:`toolzoo.tools.loader` adds the semantic checks (CEL
compiles, names exist, JSON Schemas are valid) and reports every problem with its line.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CollectionSpec(_Strict):
    key: str
    schema_: dict[str, Any] = Field(alias="schema", default_factory=lambda: {"type": "object"})


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


class SeedSpec(_Strict):
    count: int = Field(ge=0, le=1_000_000)
    fields: dict[str, FieldGen]


class SetOp(_Strict):
    collection: str
    key: str
    field: str
    value: Any


class InsertOp(_Strict):
    collection: str
    record: str  # CEL map


class DeleteOp(_Strict):
    collection: str
    key: str


EFFECT_KINDS = ("require", "set", "insert", "delete", "return")
WRITE_EFFECTS = ("set", "insert", "delete")


class Effect(_Strict):
    """One step of a tool's effects; exactly one action key (``error`` goes with ``require``)."""

    require: str | None = None
    error: str | None = None
    set: SetOp | None = None
    insert: InsertOp | None = None
    delete: DeleteOp | None = None
    return_: Any = Field(default=None, alias="return")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict):
            present = [k for k in EFFECT_KINDS if k in data]
            if len(present) != 1:
                raise ValueError(f"an effect needs exactly one of {', '.join(EFFECT_KINDS)} (got {present or 'none'})")
            if "error" in data and "require" not in data:
                raise ValueError("`error` only goes with `require`")
        return data

    @property
    def kind(self) -> str:
        for k in EFFECT_KINDS:
            if getattr(self, "return_" if k == "return" else k) is not None:
                return k
        return "return"  # `return: null` is a valid (null-returning) effect


class ToolSpec(_Strict):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
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
        return [j for j, e in enumerate(self.effects or []) if e.kind in WRITE_EFFECTS]

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
    state: dict[str, CollectionSpec] = Field(default_factory=dict)
    seed: dict[str, SeedSpec] = Field(default_factory=dict)
    tools: list[ToolSpec] = Field(default_factory=list)
    subtasks: list[SubtaskSpec] = Field(default_factory=list)
    source: SourceSpec | None = None
    system_prompt: str | None = None

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
