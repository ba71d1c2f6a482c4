"""The synthesis report: what was generated, repaired, accepted and rejected, and why.

Counting rules (the same for offline and LLM synthesis): ``generated`` counts every candidate
domain that reached validation at least once; each ends ``accepted`` or ``rejected``, so
``accepted + rejected == generated``. ``repaired`` counts accepted domains that needed at
least one repair round. ``reasons`` counts, per reason code, the rejected domains whose last
validation reported it (a domain with two reasons counts under both).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table


class DomainRecord(BaseModel):
    name: str
    category: str = ""
    status: Literal["accepted", "rejected", "pending"] = "pending"
    path: str | None = None
    attempts: int = 1  # validations (1 + repair rounds)
    repaired: bool = False
    reasons: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)  # the first few problem lines
    tasks: int = 0
    oracle_successes: int = 0
    seconds: float = 0.0


class SynthReport(BaseModel):
    mode: Literal["offline", "llm"]
    seed: int | None = None
    generated: int = 0
    repaired: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: dict[str, int] = Field(default_factory=dict)
    categories: list[str] = Field(default_factory=list)
    domains: list[DomainRecord] = Field(default_factory=list)
    seconds: float = 0.0

    def count_reasons(self) -> None:
        counts: Counter[str] = Counter()
        for d in self.domains:
            if d.status == "rejected":
                counts.update(set(d.reasons))
        self.reasons = dict(sorted(counts.items()))

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2))
        return path

    def table(self) -> Table:
        t = Table(title=f"Domain synthesis ({self.mode})")
        for col in ("generated", "repaired", "accepted", "rejected", "seconds"):
            t.add_column(col, justify="right")
        t.add_row(str(self.generated), str(self.repaired), str(self.accepted), str(self.rejected), f"{self.seconds:.1f}")
        return t

    def reasons_table(self) -> Table:
        t = Table(title="Rejections by reason")
        t.add_column("reason")
        t.add_column("domains", justify="right")
        for reason, n in self.reasons.items():
            t.add_row(reason, str(n))
        return t

    def print(self, console: Console | None = None) -> None:
        console = console or Console()
        console.print(self.table())
        if self.reasons:
            console.print(self.reasons_table())
