"""Judges in runs: the ``judges:`` list of a Run config, built once per run into a
:class:`JudgeSet` that the runner applies to each finished episode.

Entries::

    judges:
      - verifiable                                  # the episode's own check (always computed)
      - {rubric: rubrics/refund.yaml}               # a file; LLM items need `judge`
      - {rubric: default, checks_only: true}        # the library rubric of each task's domain, checks only
      - {rubric: auto, judge: {base_url: http://localhost:8000/v1, model: Qwen/Qwen3-8B}}
      - {rubric: rubrics/tone.yaml, base_url: ..., model: ...}   # shorthand for judge: {...}

``judge`` takes :class:`toolzoo.llm.LLMConfig` fields; ``generator`` (auto only) likewise and
defaults to ``judge``; an entry without ``judge`` uses the run-wide endpoint passed to
:func:`build_judges`, if any. ``name`` is the score's key (default: the rubric's name for a file,
``default`` / ``auto`` otherwise). ``with_default`` composes the domain's library rubric with the
entry's (default true for ``auto``).

Failure attribution: a :class:`JudgeError` gives the episode a new outcome of kind
``FailureKind.JUDGE`` (``Outcome.judge_failed``): ``success`` keeps the verifiable verdict for the
record, the agent's own failure kind, if any, is kept in ``meta["verifiable_failure"]``, and
``counts_for_rate`` excludes the episode whatever that verdict was. Scores of the judges that did
succeed are kept. Outcomes are never changed in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from toolzoo.core import Outcome, Task, ToolSpecView, Trajectory
from toolzoo.llm import LLMClient, LLMConfig
from toolzoo.rubrics.audit import judge_audit
from toolzoo.rubrics.base import JudgeError
from toolzoo.rubrics.combine import combine
from toolzoo.rubrics.generate import GenerationError, RubricStore
from toolzoo.rubrics.llm_judge import JudgeCache, LLMJudge
from toolzoo.rubrics.loader import Rubric, load_rubric
from toolzoo.rubrics.rubric_judge import RubricJudge, applies, compose, default_rubric, fixed, without_llm_items
from toolzoo.tools.loader import Domain
from toolzoo.tools.state import seed_state
from toolzoo.tools.zoo import get_domain

_LLM_KEYS = set(LLMConfig.model_fields)


class JudgeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rubric: str = Field(description="a rubric file path | default (the domain's library rubric) | auto (generated)")
    name: str | None = None
    judge: dict[str, Any] | None = Field(None, description="LLMConfig of the judge endpoint")
    generator: dict[str, Any] | None = Field(None, description="LLMConfig of the generator (auto; default: judge)")
    with_default: bool | None = None
    checks_only: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and _LLM_KEYS & set(data):
            data = dict(data)
            judge = dict(data.get("judge") or {})
            for key in list(data):
                if key in _LLM_KEYS:
                    judge[key] = data.pop(key)
            data["judge"] = judge
        return data


def parse_judges(judges_config: list[Any]) -> tuple[bool, list[JudgeEntry]]:
    """(verifiable listed?, rubric entries); ValueError naming the bad entry."""
    verifiable, entries = False, []
    for i, raw in enumerate(judges_config):
        if raw == "verifiable":
            verifiable = True
        elif isinstance(raw, str):
            entries.append(JudgeEntry(rubric=raw))
        elif isinstance(raw, dict):
            try:
                entries.append(JudgeEntry.model_validate(raw))
            except ValueError as exc:
                raise ValueError(f"judges[{i}]: {exc}") from None
        else:
            raise ValueError(f"judges[{i}]: expected 'verifiable' or a mapping, got {raw!r}")
    return verifiable, entries


class _Domains:
    """Domain name -> loaded domain, from the run's domain list (names or paths)."""

    def __init__(self, domains: list[str] | None):
        self._by_name: dict[str, Domain] = {}
        self._initial: dict[tuple[str, int], str] = {}
        for d in domains or []:
            try:
                dom = get_domain(d)
            except Exception:  # noqa: BLE001 - an unloadable domain fails its episodes elsewhere
                continue
            self._by_name[dom.name] = dom

    def get(self, name: str) -> Domain:
        if name not in self._by_name:
            self._by_name[name] = get_domain(name)
        return self._by_name[name]

    def initial_state(self, task: Task) -> dict[str, Any]:
        key = (task.domain, task.seed)
        if key not in self._initial:  # seeded once per (domain, seed); trials share it
            self._initial[key] = json.dumps(seed_state(self.get(task.domain).spec, task.seed).data)
        return json.loads(self._initial[key])

    def describe(self, task: Task) -> tuple[str | None, list[ToolSpecView]]:
        dom = self.get(task.domain)
        return dom.spec.description, [ToolSpecView(name=t.name, description=t.description, parameters=t.parameters)
                                      for t in dom.spec.tools]


class JudgeSet:
    """The judges of one run. ``await apply(task, traj)`` after each episode; ``aclose()`` at the end."""

    def __init__(self, judges: list[RubricJudge], *, verifiable: bool, combine: str = "product",
                 weights: dict[str, float] | None = None, clients: list[LLMClient] | None = None):
        self.judges = judges
        self.verifiable = verifiable
        self.combine = combine
        self.weights = dict(weights or {})
        self.clients = clients or []

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.judges]

    async def apply(self, task: Task, traj: Trajectory) -> Trajectory:
        """Score ``traj`` with every judge and return it with the judges' scores added and a
        *new* outcome (outcomes are frozen: nothing that held the old one sees it change).
        Episodes without a verdict (infra, user_sim, harness, no final state) come back as
        they are: rubrics would score a broken episode."""
        o = traj.outcome
        if o is None or not o.judged or traj.final_state is None:
            return traj
        errors = []
        for judge in self.judges:
            try:
                score = await judge.score(task, traj, traj.final_state)
            except (JudgeError, GenerationError) as exc:
                errors.append(f"{judge.name}: {exc}")
                continue
            if score is not None:
                traj.scores[judge.name] = score
        if errors:
            traj.meta["verifiable_failure"] = None if o.failure is None else str(o.failure)
            traj.outcome = Outcome.judge_failed("judge failed: " + " | ".join(errors), o)
            return traj
        values = {name: traj.scores[name].value for name in self.names if name in traj.scores}
        if self.verifiable and "verifiable" in traj.scores:
            values["verifiable"] = traj.scores["verifiable"].value
        if values:
            traj.outcome = o.model_copy(update={"reward": combine(values, self.combine, self.weights)})  # type: ignore[arg-type]
        return traj

    async def aclose(self) -> None:
        for c in self.clients:
            await c.aclose()


def build_judges(judges_config: list[Any], run_dir: str | Path, llm_config: LLMConfig | dict | None = None, *,
                 combine: str = "product", weights: dict[str, float] | None = None,
                 domains: list[str] | None = None, base_dir: str | Path | None = None) -> JudgeSet:
    """Build once per run. ``llm_config``: the endpoint for entries without their own ``judge``;
    ``domains``: the run's domain list (names or paths), to find initial states and tools;
    ``base_dir``: where relative rubric paths start (the run config's folder; default cwd).
    Rubric files are loaded (and their CEL compiled) here, so a bad file fails the run at start."""
    verifiable, entries = parse_judges(judges_config)
    run_dir = Path(run_dir)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    doms = _Domains(domains)
    cache = JudgeCache(run_dir / "judge_cache.jsonl")
    clients: dict[str, LLMClient] = {}

    def client_for(cfg: dict | LLMConfig | None) -> LLMClient | None:
        if cfg is None:
            return None
        cfg = cfg if isinstance(cfg, LLMConfig) else LLMConfig.model_validate(cfg)
        key = cfg.model_dump_json()
        if key not in clients:
            clients[key] = LLMClient(cfg)
        return clients[key]

    judges: list[RubricJudge] = []
    for entry in entries:
        judge_client = client_for(entry.judge if entry.judge is not None else llm_config)
        llm = LLMJudge(judge_client, cache) if judge_client is not None else None
        with_default = entry.with_default if entry.with_default is not None else entry.rubric == "auto"
        strip = without_llm_items if entry.checks_only else (lambda r: r)

        if entry.rubric == "default":
            name = entry.name or "default"

            async def resolve(task: Task, strip=strip) -> Rubric | None:
                r = default_rubric(task.domain)
                return strip(r) if r is not None else None
        elif entry.rubric == "auto":
            name = entry.name or "auto"
            gen_client = client_for(entry.generator) if entry.generator is not None else judge_client
            store = RubricStore(run_dir, gen_client, describe=doms.describe)

            async def resolve(task: Task, store=store, with_default=with_default, strip=strip) -> Rubric | None:
                r = await store.get(task)
                base_r = default_rubric(task.domain) if with_default else None
                return strip(compose(base_r, r) if base_r is not None else r)
        else:
            path = Path(entry.rubric)
            path = path if path.is_absolute() else base / path
            rubric = strip(load_rubric(path))
            name = entry.name or rubric.name
            if rubric.llm_items() or rubric.spec.aggregation == "implicit":
                if llm is None:
                    raise ValueError(f"rubric {rubric.name!r} ({path}) has items without a check: configure "
                                     "`judge: {base_url, model}` on its entry, or set `checks_only: true`")
            static = fixed(rubric)
            if with_default:
                async def resolve(task: Task, rubric=rubric, strip=strip) -> Rubric | None:
                    if not applies(rubric, task):
                        return None
                    base_r = default_rubric(task.domain)
                    return strip(compose(base_r, rubric)) if base_r is not None else rubric
            else:
                resolve = static
        if name in [j.name for j in judges] or name == "verifiable":
            raise ValueError(f"two judges would write the score {name!r}: give one a `name`")
        judges.append(RubricJudge(name, resolve, doms.initial_state, llm))
    return JudgeSet(judges, verifiable=verifiable, combine=combine, weights=weights, clients=list(clients.values()))


_SETS: dict[str, JudgeSet] = {}


async def apply_judges(judges_config: list, task: Task, trajectory: Trajectory, *, run_dir: Path,
                       llm_clients: LLMConfig | dict | None = None, combine: str = "product",
                       weights: dict | None = None, domains: list[str] | None = None) -> Trajectory:
    """One-call form of ``build_judges(...).apply(task, trajectory)``: the JudgeSet is built on
    first use per (config, run folder) and reused (so caches persist). ``llm_clients``: the
    run-wide judge endpoint (an LLMConfig or its dict), or None. Prefer holding a JudgeSet."""
    key = json.dumps([judges_config, str(run_dir), combine, weights or {}, domains or [],
                      llm_clients.model_dump_json() if isinstance(llm_clients, LLMConfig) else llm_clients],
                     sort_keys=True, default=str)
    if key not in _SETS:
        _SETS[key] = build_judges(judges_config, run_dir, llm_clients, combine=combine, weights=weights,
                                  domains=domains)
    return await _SETS[key].apply(task, trajectory)


async def close_judge_sets() -> None:
    while _SETS:
        await _SETS.popitem()[1].aclose()


def summary_blocks(trajectories: list[Trajectory], threshold: float = 0.5) -> dict[str, Any]:
    """``{"rubrics": {name: {"mean", "episodes", "by_length": {L: mean}}}, "judge_audit": {...}}``
    over trajectories whose scores hold each rubric (the verifiable score is not a rubric)."""
    sums: dict[str, dict[str, list[float]]] = {}
    for traj in trajectories:
        for name, score in traj.scores.items():
            if name == "verifiable":
                continue
            sums.setdefault(name, {}).setdefault(str(traj.task.length), []).append(score.value)
    rubrics = {}
    for name, by_len in sorted(sums.items()):
        values = [v for vs in by_len.values() for v in vs]
        rubrics[name] = {"mean": sum(values) / len(values), "episodes": len(values),
                         "by_length": {L: sum(vs) / len(vs) for L, vs in sorted(by_len.items(), key=lambda kv: int(kv[0]))}}
    return {"rubrics": rubrics, "judge_audit": judge_audit(trajectories, threshold)}


def audit_table(summary: dict[str, Any]):
    """A rich Table of ``summary["judge_audit"]`` (for ``toolzoo report``), or None when empty."""
    audit = summary.get("judge_audit") or {}
    if not audit.get("rubrics"):
        return None
    from rich.table import Table

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    table = Table(title=f"Judge audit vs verifiable success (aggregate >= {audit.get('threshold', 0.5)})")
    for col in ("rubric", "compared", "n", "precision", "recall", "kappa", "tp/fp/fn/tn"):
        table.add_column(col, justify="right" if col not in ("rubric", "compared") else "left")
    for name, block in audit["rubrics"].items():
        rows = [("aggregate", block["aggregate"])]
        if block.get("llm_items"):
            rows.append(("LLM items (pooled)", block["llm_items"]))
        rows += [(f"item {k}", v) for k, v in block.get("items", {}).items()]
        for label, a in rows:
            table.add_row(name, label, str(a["n"]), f(a["precision"]), f(a["recall"]), f(a["kappa"]),
                          f"{a['tp']}/{a['fp']}/{a['fn']}/{a['tn']}")
    return table
