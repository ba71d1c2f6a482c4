"""The Rubric format (``toolzoo schema rubric``): items with a criterion, a weight and an
optional CEL ``check``. Items with a check are verified against the trajectory; the others
are decided by an LLM judge. See docs/rubrics.md."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

WeightName = Literal["essential", "important", "optional", "pitfall"]
# essential 1.0 | important 0.7 | optional 0.3 | pitfall 0.9 (a pitfall's criterion is phrased
# positively, "avoids ...", so satisfying it earns its weight like any other item).
WEIGHTS: dict[str, float] = {"essential": 1.0, "important": 0.7, "optional": 0.3, "pitfall": 0.9}
Aggregation = Literal["explicit", "implicit", "all"]
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
MIN_WEIGHT, MAX_WEIGHT = 1e-6, 1e6  # numeric weights: bounded so Σw never under/overflows


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RubricItem(_Strict):
    id: str = Field(description="unique within the rubric: letters, digits, _ . -")
    criterion: str = Field(min_length=1, description="what must hold, phrased positively")
    weight: WeightName | float = Field(
        description="essential 1.0 | important 0.7 | optional 0.3 | pitfall 0.9 | a positive number")
    check: str | None = Field(None, description="CEL over final, initial, task, calls, messages: "
                                                "verifiable, no LLM; without it an LLM judge decides")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"item id {v!r} must start with a letter or _ and use only letters, digits, _ . -")
        return v

    @field_validator("criterion")
    @classmethod
    def _criterion(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("criterion must not be blank")
        return v

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, v: Any) -> Any:
        if isinstance(v, str) and v in WEIGHTS:
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
                and MIN_WEIGHT <= v <= MAX_WEIGHT:
            return float(v)
        raise ValueError(f"weight must be one of {', '.join(WEIGHTS)} or a number in "
                         f"[{MIN_WEIGHT:g}, {MAX_WEIGHT:g}], got {v!r}")

    @property
    def weight_value(self) -> float:
        return WEIGHTS[self.weight] if isinstance(self.weight, str) else float(self.weight)

    @property
    def essential(self) -> bool:
        return self.weight == "essential"


class AppliesTo(_Strict):
    domain: str | None = Field(None, description="only tasks of this domain (None: any)")
    task: str | None = Field(None, description="only this task id (generated rubrics)")


class RubricSpec(_Strict):
    rubric: str = Field(description="the rubric's name: the key of its score in a trajectory")
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    aggregation: Aggregation = Field(
        "explicit", description="explicit: Σw·c/Σw | implicit: one judge score 1-10 -> [0,1] | "
                                "all: 1 when every essential item passes, else 0")
    items: list[RubricItem] = Field(min_length=1)
    version: str | None = Field(None, description="free text; generated rubrics carry their content hash")
    description: str | None = None

    @field_validator("rubric")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"rubric name {v!r} must use only letters, digits, _ . -")
        return v
