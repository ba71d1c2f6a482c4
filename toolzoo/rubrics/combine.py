"""Combine named scores in [0, 1] into one reward.

* ``product``: Π sᵢ^wᵢ (weight 1 by default; weight 0 leaves a score out). Any score at 0
  zeroes the reward: a rubric can only lower what the verifiable check grants.
* ``weighted_sum``: Σ wᵢ·sᵢ / Σ wᵢ (weight 1 by default), a normalised average.
"""

from __future__ import annotations

import math
from typing import Literal

Method = Literal["product", "weighted_sum"]


def combine(scores: dict[str, float], method: Method = "product", weights: dict[str, float] | None = None) -> float:
    weights = weights or {}
    for name, w in weights.items():
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"judge weight for {name!r} must be a finite number >= 0, got {w!r}")
    used = {k: min(1.0, max(0.0, float(v))) for k, v in scores.items() if weights.get(k, 1.0) > 0}
    if not used:
        return 0.0
    if method == "product":
        out = 1.0
        for name, value in used.items():
            out *= value ** weights.get(name, 1.0)
        return min(1.0, max(0.0, out))
    if method == "weighted_sum":
        total = sum(weights.get(k, 1.0) for k in used)
        return min(1.0, max(0.0, sum(weights.get(k, 1.0) * v for k, v in used.items()) / total))
    raise ValueError(f"unknown combine method {method!r} (product | weighted_sum)")
