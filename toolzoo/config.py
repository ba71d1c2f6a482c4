"""YAML loading that remembers where every value came from.

Every YAML format in toolzoo is loaded through :func:`load_yaml_model`: the document is
composed into a node tree (so each field path maps to a line), validated by its pydantic model,
and every problem is reported at once as ``file:line field.path: message``. Semantic checks
(CEL compiles, names exist) add their problems to the same list through :class:`Problems`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError

Path_ = tuple[str | int, ...]


def _lengths(v: list[int]) -> list[int]:
    if not v or any(x < 1 for x in v):
        raise ValueError("lengths must be positive integers")
    return sorted(set(v))


# Task lengths in subtasks, as every YAML format writes them: positive, deduplicated, sorted.
Lengths = Annotated[list[int], AfterValidator(_lengths)]
M = TypeVar("M", bound=BaseModel)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


@dataclass
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}"


class LoadError(Exception):
    """One or more problems in a YAML file; ``str()`` lists them all, one per line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class SourceMap:
    """Field path -> 1-based line number, for one YAML document."""

    file: str
    lines: dict[Path_, int] = field(default_factory=dict)
    # Scalar values: (line where the value starts, YAML style: None plain, '|' literal, ...), so
    # a problem inside a multi-line text (a CEL expression) can name its own line.
    scalars: dict[Path_, tuple[int, str | None]] = field(default_factory=dict)

    def line_in_value(self, path: Path_, line_in_text: int) -> int | None:
        """The file line of line ``line_in_text`` (1-based) of the text value at ``path``."""
        start, style = self.scalars.get(tuple(path), (None, None))
        if start is None:
            return self.line_of(path)
        if style == "|":  # a literal block starts on the line after its indicator
            return start + line_in_text
        return start  # folded and flow scalars join their lines: the value's first line

    def line_of(self, path: Path_) -> int | None:
        # Fall back to the nearest enclosing node that has a line.
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class Problems:
    """Collects problems against one source map, so checks can keep going after an error."""

    def __init__(self, source: SourceMap):
        self.source = source
        self.items: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        self.items.append(Problem(self.source.file, self.source.line_of(path), format_path(path), message))

    def raise_if_any(self) -> None:
        if self.items:
            raise LoadError(self.items)


# YAML 1.1 reads these plain keys as booleans; as keys they are always meant as names (YAML 1.2
# reads them as text), e.g. a field called `on` or `yes`.
_BOOL_WORDS = {"y", "yes", "n", "no", "on", "off"}
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct(node: yaml.Node, path: Path_, lines: dict[Path_, int], scalars: dict[Path_, tuple[int, str | None]] | None = None) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *anchor` or `<<: [*a, *b]`
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                if not all(isinstance(m, yaml.MappingNode) for m in sources):
                    raise yaml.MarkedYAMLError(problem="a merge key `<<` takes a mapping or a list of mappings",
                                               problem_mark=value_node.start_mark)
                merged.extend(sources)
                continue
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value if (key_node.tag == "tag:yaml.org,2002:bool" and key_node.style is None
                                         and key_node.value.lower() in _BOOL_WORDS) else _scalar(key_node)
            else:
                key = yaml.safe_load(yaml.serialize(key_node))
            if key in out:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            out[key] = _construct(value_node, path + (key,), lines, scalars)
            lines[path + (key,)] = key_node.start_mark.line + 1
        for source in merged:  # explicit keys win; among merged mappings the first wins (YAML spec)
            for key, value in _construct(source, path, {}, None).items():
                out.setdefault(key, value)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, path + (i,), lines, scalars) for i, child in enumerate(node.value)]
    if scalars is not None:
        scalars[path] = (node.start_mark.line + 1, node.style)
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    return _SCALAR_LOADER.construct_object(node, deep=True)


class _ScalarLoader(yaml.SafeLoader):
    def __init__(self) -> None:
        super().__init__("")


_SCALAR_LOADER = _ScalarLoader()


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain data plus a source map; syntax errors become LoadError."""
    source = SourceMap(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = {} if node is None else _construct(node, (), source.lines, source.scalars)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise LoadError([Problem(file, line, "<yaml>", f"YAML syntax error: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise LoadError([Problem(file, None, "<yaml>", f"YAML error: {exc}")]) from None
    except TypeError as exc:  # e.g. a list used as a mapping key: `? [a]: 1`
        raise LoadError([Problem(file, None, "<yaml>", f"unsupported YAML: {exc}")]) from None
    return data, source


def validate_model(model: type[M], data: Any, source: SourceMap) -> M:
    """Validate data with a pydantic model; every error is reported with its line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = Problems(source)
        seen: set[tuple] = set()
        for err in exc.errors():
            loc = _data_path(data, err["loc"])
            if (loc, err["msg"]) in seen:
                continue
            seen.add((loc, err["msg"]))
            msg = err["msg"]
            if err.get("type") == "string_type" and isinstance(err.get("input"), bool):
                msg += " (YAML 1.1 reads a bare yes/no/on/off/true/false as a boolean: quote it, e.g. 'on')"
            problems.add(loc, msg)
        problems.raise_if_any()
        raise


def _data_path(data: Any, loc: tuple) -> Path_:
    """pydantic locations include union-branch tags (class names); keep only real data keys.
    A key missing from the data (a missing field) is kept when it is the last part."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif i == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict):
            out.append(part)
    return tuple(out)


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError([Problem(str(path), None, "<file>", f"cannot read: {exc.strerror or exc}")]) from None


def load_yaml_model(model: type[M], path: str | Path) -> tuple[M, SourceMap]:
    data, source = parse_yaml(read_text(path), str(path))
    return validate_model(model, data, source), source
