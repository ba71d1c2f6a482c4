"""Load a rubric YAML file: shape (pydantic), then CEL checks compiled and item ids checked,
every problem reported at once as ``file:line field.path: message``. Any input — including
arbitrary bytes of YAML — either loads or raises :class:`~toolzoo.config.LoadError`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from toolzoo.config import LoadError, Problem, Problems, SourceMap, parse_yaml, read_text, validate_model
from toolzoo.rubrics.checks import Check, compile_check
from toolzoo.rubrics.spec import RubricItem, RubricSpec
from toolzoo.tools.cel import CelError


def rubric_hash(spec: RubricSpec) -> str:
    """Content hash (without ``version``): what caches and frozen generated rubrics key on."""
    body = spec.model_dump(mode="json", exclude={"version"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Rubric:
    """A loaded rubric: the spec, its compiled checks (by item id), where it came from, and
    its content hash."""

    spec: RubricSpec
    checks: dict[str, Check] = field(default_factory=dict)
    file: str = ""
    version: str = ""

    @property
    def name(self) -> str:
        return self.spec.rubric

    @property
    def items(self) -> list[RubricItem]:
        return self.spec.items

    def llm_items(self) -> list[RubricItem]:
        return [i for i in self.spec.items if i.check is None]

    def weights(self) -> dict[str, float]:
        return {i.id: i.weight_value for i in self.spec.items}


def compile_rubric(spec: RubricSpec, source: SourceMap | None = None) -> Rubric:
    problems = Problems(source or SourceMap(f"<{spec.rubric}>"))
    checks: dict[str, Check] = {}
    seen: set[str] = set()
    for i, item in enumerate(spec.items):
        if item.id in seen:
            problems.add(("items", i, "id"), f"duplicate item id {item.id!r}")
        seen.add(item.id)
        if item.check is not None:
            try:
                checks[item.id] = compile_check(item.check)
            except CelError as exc:
                problems.add(("items", i, "check"), f"CEL does not compile: {exc}")
    problems.raise_if_any()
    return Rubric(spec, checks, source.file if source else "", rubric_hash(spec))


def load_rubric_text(text: str, file: str = "<rubric>") -> Rubric:
    try:
        data, source = parse_yaml(text, file)
        spec = validate_model(RubricSpec, data, source)
        return compile_rubric(spec, source)
    except LoadError:
        raise
    except (RecursionError, TypeError, ValueError, yaml.YAMLError) as exc:
        # e.g. an unhashable (list) mapping key, or nesting deeper than Python's stack
        raise LoadError([Problem(file, None, "<yaml>", f"cannot load: {type(exc).__name__}: {exc}")]) from None


def load_rubric(path: str | Path) -> Rubric:
    return load_rubric_text(read_text(path), str(path))


def dump_rubric(spec: RubricSpec) -> str:
    """YAML text of a spec, in field order, omitting unset optional fields."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data["items"] = [{k: v for k, v in item.items() if v is not None} for item in data["items"]]
    if not data.get("applies_to"):
        data.pop("applies_to", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
