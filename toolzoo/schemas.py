"""JSON Schemas of the YAML formats, for editors (``toolzoo schema domain|rubric|run|train``)."""

from __future__ import annotations

import importlib
from typing import Any

_FORMATS = {
    "domain": ("toolzoo.tools.spec", "DomainSpec"),
    "rubric": ("toolzoo.rubrics.spec", "RubricSpec"),
    "run": ("toolzoo.envs.run_config", "RunConfig"),
    "train": ("toolzoo.trainer.config", "TrainConfig"),
}


def json_schema(fmt: str) -> dict[str, Any]:
    module, name = _FORMATS[fmt]
    model = getattr(importlib.import_module(module), name)
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", f"toolzoo {fmt}")
    return schema
