"""The offline procedural generator: distinct, valid domains without an LLM.

A domain is drawn from the grammar in :mod:`toolzoo.synth.grammar`: an *item* kind (records
with a status lifecycle, an integer counter with bounds, a priority and a reference to a
*group*) and a *group* kind, plus a random set of operation families:

==============  ====================================================  ==========================
family          tools                                                 goal templates
==============  ====================================================  ==========================
lookup          get_<item>                                            status/counter (answer)
status          one tool per chosen transition (``require`` guard)    mutate, mutate+answer, prev
counter         add_/remove_<counter> (bounded)                       mutate, mutate+answer, prev
transfer        transfer_<counter> between two items                  mutate
group           get_<group>, list_<items>_in_<group>                  answer, chained via prev
reassign        reassign_<item> (relation change)                     mutate, prev
link            set_<group>_lead (relation)                           mutate, answer
insert          register_<item>                                       mutate (new id), prev
delete          delete_<item> (only in the final status)              mutate
priority        set_<item>_priority (enum argument)                   mutate, answer
census          count_<items>_by_status                               answer
==============  ====================================================  ==========================

Every tool appears in some template's solution; lookup templates are always satisfiable, so
chains of length 16 can be placed. Domains are named ``<item>_<group>_<n>`` and are distinct
by construction (a structural fingerprint, name excluded, is checked). Each one is validated
(load, reachability, oracle on lengths 1-8) in a pool of worker processes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import random
import time
from pathlib import Path
from typing import Any, Iterator

import yaml

from toolzoo.synth.grammar import AREAS, GROUPS, ITEMS, LIFECYCLES, NAMES, PRIORITIES, Group, Item, Lifecycle
from toolzoo.synth.report import DomainRecord, SynthReport

OPTIONAL = ["counter", "transfer", "group", "reassign", "link", "insert", "delete", "priority", "census"]
_NEEDS = {"transfer": "counter"}  # a family that only makes sense with another


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


class _Builder:
    """Builds one domain as plain data (what the YAML file will hold)."""

    def __init__(self, rng: random.Random, item: Item, group: Group, life: Lifecycle, families: list[str], n: int):
        self.rng, self.item, self.group, self.life, self.f = rng, item, group, life, set(families)
        self.n = n
        it, gr = item.noun, group.noun
        self.A, self.B = item.plural, group.plural  # collection names
        self.aid, self.bid = f"{it}_id", f"{gr}_id"
        self.counter = rng.choice(item.counters)
        self.cmax = rng.choice([50, 100, 200, 500])
        self.area = rng.choice(AREAS)
        k = len(life.transitions)
        self.transitions = rng.sample(life.transitions, rng.randint(min(3, k), k))
        self.tools: list[dict[str, Any]] = []
        self.subtasks: list[dict[str, Any]] = []
        self.name = f"{it}_{gr}_{n}"

    # -- helpers
    def _exists(self, coll: str, arg: str, noun: str) -> dict[str, Any]:
        return {"require": f"args.{arg} in state.{coll}", "error": f"no {noun} {{args.{arg}}}"}

    def _prev(self, condition: str = "true") -> str:
        """``prev.a`` when the previous subtask bound an item that still exists and meets the
        condition, else null (unsatisfiable). Nested conditionals: CEL evaluates them lazily,
        so a missing ``prev.a`` is never looked up."""
        return (f"'a' in prev ? (prev.a in state.{self.A} ? ({condition} ? prev.a : null) : null) : null")

    def _rec(self, var: str) -> str:
        return f"state.{self.A}[{var}]"

    def tool(self, name: str, description: str, params: dict[str, Any], required: list[str],
             effects: list[dict[str, Any]]) -> None:
        self.tools.append({"name": name, "description": description, "parameters": _obj(params, required),
                           "effects": effects})

    def goal(self, id: str, bind: dict[str, str], ask: str, solution: list[tuple[str, dict[str, Any]]],
             answer: str | None = None) -> None:
        sub: dict[str, Any] = {"id": id, "bind": bind, "ask": ask,
                               "solution": [{"tool": t, "args": a} for t, a in solution]}
        if answer is not None:
            sub["answer"] = answer
        self.subtasks.append(sub)

    # -- families
    def build(self) -> dict[str, Any]:
        it, A, aid, c = self.item.noun, self.A, self.aid, self.counter
        get_a = f"get_{it}"
        self.tool(get_a, f"Look up one {it} by id: its status, {c}, {self.group.noun} and priority.",
                  {aid: {"type": "string"}}, [aid],
                  [self._exists(A, aid, it), {"return": f"state.{A}[args.{aid}]"}])
        self.goal("status_of", {"a": f"pick(state.{A}.filter(k, true))"},
                  f"What is the status of {it} {{a}}?", [(get_a, {aid: "a"})], f"{self._rec('a')}.status")
        self.goal("prev_status", {"a": self._prev()},
                  f"And what is the status of that same {it}, {{a}}, now?", [(get_a, {aid: "a"})],
                  f"{self._rec('a')}.status")
        self._status()
        for fam in OPTIONAL:
            if fam in self.f:
                getattr(self, f"_{fam}")()
        return {
            "domain": self.name,
            "category": self.item.category,
            "description": f"{self.item.plural.capitalize()} and the {self.group.plural} they belong to "
                           f"(synthetic, offline generator: {', '.join(sorted(self.f | {'lookup', 'status'}))}).",
            "system_prompt": f"You manage {self.item.plural} for a network of {self.group.plural}. "
                             f"Statuses: {', '.join(self.life.statuses)}. Use the tools; state answers plainly.",
            "state": self._state(),
            "seed": self._seed(),
            "tools": self.tools,
            "subtasks": self.subtasks,
        }

    def _state(self) -> dict[str, Any]:
        a_props = {"id": {"type": "string"}, "status": {"enum": self.life.statuses},
                   self.counter: {"type": "integer", "minimum": 0, "maximum": self.cmax},
                   self.group.noun: {"type": "string"}, "priority": {"enum": PRIORITIES}}
        b_props = {"id": {"type": "string"}, "manager": {"type": "string"}, "area": {"enum": self.area}}
        if "link" in self.f:
            b_props["lead"] = {"type": "string"}
        return {self.B: {"key": "id", "schema": _obj(b_props, list(b_props))},
                self.A: {"key": "id", "schema": _obj(a_props, list(a_props))}}

    def _seed(self) -> dict[str, Any]:
        b = {"id": {"pattern": f"{self.group.noun[:3].upper()}{{i:02d}}"}, "manager": {"choice": NAMES},
             "area": {"choice": self.area}}
        if "link" in self.f:
            b["lead"] = {"value": ""}
        a = {"id": {"pattern": f"{self.item.noun[:3]}{{i:03d}}"}, "status": {"choice": self.life.statuses},
             self.counter: {"int": [0, self.cmax // 2]}, self.group.noun: {"ref": self.B},
             "priority": {"choice": PRIORITIES}}
        return {self.B: {"count": self.rng.randint(3, 6), "fields": b},
                self.A: {"count": self.rng.randint(16, 30), "fields": a}}

    def _status(self) -> None:
        it, A, aid = self.item.noun, self.A, self.aid
        for i, tr in enumerate(self.transitions):
            name = f"{tr.verb}_{it}"
            self.tool(name, f"{tr.phrase.capitalize()} a {it}: only a {it} that is {tr.src} becomes {tr.dst}.",
                      {aid: {"type": "string"}}, [aid],
                      [self._exists(A, aid, it),
                       {"require": f"state.{A}[args.{aid}].status == '{tr.src}'",
                        "error": f"{it} {{args.{aid}}} is not {tr.src} (status: {{state.{A}[args.{aid}].status}})"},
                       {"set": {"collection": A, "key": f"args.{aid}", "field": "status", "value": f"'{tr.dst}'"}},
                       {"return": f"{{'{aid}': args.{aid}, 'status': '{tr.dst}'}}"}])
            pick = f"pick(state.{A}.filter(k, state.{A}[k].status == '{tr.src}'))"
            self.goal(f"{tr.verb}", {"a": pick}, f"Please {tr.phrase} {it} {{a}}.", [(name, {aid: "a"})])
            if i == 0:
                self.goal(f"{tr.verb}_then_status", {"a": pick},
                          f"{tr.phrase.capitalize()} {it} {{a}}, then tell me its status.",
                          [(name, {aid: "a"}), (f"get_{it}", {aid: "a"})], f"{self._rec('a')}.status")
            if i == 1:
                self.goal(f"prev_{tr.verb}",
                          {"a": self._prev(f"state.{A}[prev.a].status == '{tr.src}'")},
                          f"Now {tr.phrase} that same {it}, {{a}}.", [(name, {aid: "a"})])

    def _counter(self) -> None:
        it, A, aid, c, cmax = self.item.noun, self.A, self.aid, self.counter, self.cmax
        amt_add, amt_rm = self.rng.randint(1, 9), self.rng.randint(1, 9)
        amount = {"type": "integer", "minimum": 1}
        add, rm = f"add_{it}_{c}", f"remove_{it}_{c}"  # noun-specific: names stay unique across the zoo
        count = f"state.{A}[args.{aid}].{c}"

        def change(name: str, description: str, require: str, error: str, op: str) -> None:
            """A tool that moves the counter by ``op`` args.amount once ``require`` holds."""
            self.tool(name, description, {aid: {"type": "string"}, "amount": amount}, [aid, "amount"],
                      [self._exists(A, aid, it), {"require": require, "error": error},
                       {"set": {"collection": A, "key": f"args.{aid}", "field": c,
                                "value": f"{count} {op} int(args.amount)"}},
                       {"return": f"{{'{aid}': args.{aid}, '{c}': {count}}}"}])

        change(add, f"Increase the {c} of one {it} by an amount; the total may not exceed {cmax}.",
               f"{count} + int(args.amount) <= {cmax}", f"{it} {{args.{aid}}} would exceed {cmax} {c}", "+")
        change(rm, f"Take {c} away from a {it}; refused when it holds fewer than asked.",
               f"{count} >= int(args.amount)", f"{it} {{args.{aid}}} has only {{{count}}} {c}", "-")
        room = f"pick(state.{A}.filter(k, state.{A}[k].{c} + {amt_add} <= {cmax}))"
        self.goal(f"add_{c}", {"a": room}, f"Add {amt_add} {c} to {it} {{a}}.",
                  [(add, {aid: "a", "amount": amt_add})])
        self.goal(f"add_{c}_then_total", {"a": room}, f"Add {amt_add} {c} to {it} {{a}} and tell me the new total.",
                  [(add, {aid: "a", "amount": amt_add}), (f"get_{it}", {aid: "a"})], f"{self._rec('a')}.{c}")
        self.goal(f"remove_{c}", {"a": f"pick(state.{A}.filter(k, state.{A}[k].{c} >= {amt_rm}))"},
                  f"Remove {amt_rm} {c} from {it} {{a}}.", [(rm, {aid: "a", "amount": amt_rm})])
        self.goal(f"prev_{c}", {"a": self._prev()},
                  f"How many {c} does that {it}, {{a}}, have now?", [(f"get_{it}", {aid: "a"})],
                  f"{self._rec('a')}.{c}")

    def _transfer(self) -> None:
        it, A, c, cmax = self.item.noun, self.A, self.counter, self.cmax
        amt = self.rng.randint(1, 9)
        name = f"transfer_{it}_{c}"
        src, dst = f"from_{it}_id", f"to_{it}_id"
        self.tool(name, f"Move {c} from one {it} to another; the source needs enough, the target stays <= {cmax}.",
                  {src: {"type": "string"}, dst: {"type": "string"},
                   "amount": {"type": "integer", "minimum": 1}}, [src, dst, "amount"],
                  [self._exists(A, src, it), self._exists(A, dst, it),
                   {"require": f"args.{src} != args.{dst}", "error": f"cannot move {c} from a {it} to itself"},
                   {"require": f"state.{A}[args.{src}].{c} >= int(args.amount)",
                    "error": f"{it} {{args.{src}}} has only {{state.{A}[args.{src}].{c}}} {c}"},
                   {"require": f"state.{A}[args.{dst}].{c} + int(args.amount) <= {cmax}",
                    "error": f"{it} {{args.{dst}}} would exceed {cmax} {c}"},
                   {"set": {"collection": A, "key": f"args.{src}", "field": c,
                            "value": f"state.{A}[args.{src}].{c} - int(args.amount)"}},
                   {"set": {"collection": A, "key": f"args.{dst}", "field": c,
                            "value": f"state.{A}[args.{dst}].{c} + int(args.amount)"}},
                   {"return": f"{{'{src}': args.{src}, 'from_{c}': state.{A}[args.{src}].{c}, "
                              f"'{dst}': args.{dst}, 'to_{c}': state.{A}[args.{dst}].{c}}}"}])
        self.goal(name, {"a": f"pick(state.{A}.filter(k, state.{A}[k].{c} >= {amt}))",
                         "t": f"pick(state.{A}.filter(k, k != a && state.{A}[k].{c} + {amt} <= {cmax}))"},
                  f"Move {amt} {c} from {it} {{a}} to {it} {{t}}.",
                  [(name, {src: "a", dst: "t", "amount": amt})])

    def _group(self) -> None:
        it, gr, A, B, aid, bid = self.item.noun, self.group.noun, self.A, self.B, self.aid, self.bid
        self.tool(f"get_{gr}", f"Look up one {gr} by id: its manager and area.", {bid: {"type": "string"}}, [bid],
                  [self._exists(B, bid, gr), {"return": f"state.{B}[args.{bid}]"}])
        lst = f"list_{A}_in_{gr}"
        self.tool(lst, f"The ids (sorted) of every {it} assigned to a {gr}.", {bid: {"type": "string"}}, [bid],
                  [self._exists(B, bid, gr), {"return": f"sorted(state.{A}.filter(k, state.{A}[k].{gr} == args.{bid}))"}])
        self.goal(f"{gr}_of", {"a": f"pick(state.{A}.filter(k, true))"},
                  f"Which {gr} is {it} {{a}} assigned to?", [(f"get_{it}", {aid: "a"})], f"{self._rec('a')}.{gr}")
        self.goal(f"count_in_{gr}", {"b": f"pick(state.{B}.filter(k, true))"},
                  f"How many {A} does {gr} {{b}} have?", [(lst, {bid: "b"})],
                  f"size(state.{A}.filter(k, state.{A}[k].{gr} == b))")
        self.goal(f"prev_{gr}_manager", {"a": self._prev(), "b": f"{self._rec('a')}.{gr}"},
                  f"Who manages the {gr} that {it} {{a}} belongs to?",
                  [(f"get_{it}", {aid: "a"}), (f"get_{gr}", {bid: "b"})], f"state.{B}[b].manager")

    def _reassign(self) -> None:
        it, gr, A, B, aid, bid = self.item.noun, self.group.noun, self.A, self.B, self.aid, self.bid
        name = f"reassign_{it}"
        self.tool(name, f"Assign a {it} to a different {gr}.", {aid: {"type": "string"}, bid: {"type": "string"}},
                  [aid, bid],
                  [self._exists(A, aid, it), self._exists(B, bid, gr),
                   {"require": f"state.{A}[args.{aid}].{gr} != args.{bid}",
                    "error": f"{it} {{args.{aid}}} is already in {gr} {{args.{bid}}}"},
                   {"set": {"collection": A, "key": f"args.{aid}", "field": gr, "value": f"args.{bid}"}},
                   {"return": f"{{'{aid}': args.{aid}, '{gr}': args.{bid}}}"}])
        other = f"pick(state.{B}.filter(k, k != {self._rec('a')}.{gr}))"
        self.goal(name, {"a": f"pick(state.{A}.filter(k, true))", "b": other},
                  f"Move {it} {{a}} to {gr} {{b}}.", [(name, {aid: "a", bid: "b"})])
        self.goal(f"prev_{name}", {"a": self._prev(), "b": other},
                  f"Also move that {it}, {{a}}, to {gr} {{b}}.", [(name, {aid: "a", bid: "b"})])

    def _link(self) -> None:
        it, gr, A, B, aid, bid = self.item.noun, self.group.noun, self.A, self.B, self.aid, self.bid
        name = f"set_{gr}_lead"
        self.tool(name, f"Make one of a {gr}'s own {A} its lead {it}.",
                  {bid: {"type": "string"}, aid: {"type": "string"}}, [bid, aid],
                  [self._exists(B, bid, gr), self._exists(A, aid, it),
                   {"require": f"state.{A}[args.{aid}].{gr} == args.{bid}",
                    "error": f"{it} {{args.{aid}}} is not in {gr} {{args.{bid}}}"},
                   {"set": {"collection": B, "key": f"args.{bid}", "field": "lead", "value": f"args.{aid}"}},
                   {"return": f"{{'{bid}': args.{bid}, 'lead': args.{aid}}}"}])
        self.goal(name, {"a": f"pick(state.{A}.filter(k, state.{B}[state.{A}[k].{gr}].lead != k))",
                         "b": f"{self._rec('a')}.{gr}"},
                  f"Make {it} {{a}} the lead {it} of its {gr}.",
                  [(f"get_{it}", {aid: "a"}), (name, {bid: "b", aid: "a"})])
        self.goal(f"{gr}_lead", {"b": f"pick(state.{B}.filter(k, state.{B}[k].lead != ''))"},
                  f"Which {it} is the lead of {gr} {{b}}?", [(f"get_{gr}", {bid: "b"})], f"state.{B}[b].lead")
        if "group" not in self.f:  # get_<group> is part of the group family; link needs it too
            self.tool(f"get_{gr}", f"Look up one {gr} by id: its manager, area and lead.", {bid: {"type": "string"}},
                      [bid], [self._exists(B, bid, gr), {"return": f"state.{B}[args.{bid}]"}])

    def _insert(self) -> None:
        it, gr, A, B, aid, bid = self.item.noun, self.group.noun, self.A, self.B, self.aid, self.bid
        name = f"register_{it}"
        c = self.counter
        self.tool(name, f"Register a new {it} under a {gr}; it starts {self.life.initial} with no {c}.",
                  {aid: {"type": "string", "minLength": 1}, bid: {"type": "string"}}, [aid, bid],
                  [{"require": f"!(args.{aid} in state.{A})", "error": f"{it} {{args.{aid}}} already exists"},
                   self._exists(B, bid, gr),
                   {"insert": {"collection": A, "record": f"{{'id': args.{aid}, 'status': '{self.life.initial}', "
                                                          f"'{c}': 0, '{gr}': args.{bid}, 'priority': 'normal'}}"}},
                   {"return": f"state.{A}[args.{aid}]"}])
        fresh = ", ".join(f"'{it[:3]}9{i:02d}'" for i in range(20))
        self.goal(name, {"a": f"pick([{fresh}].filter(k, !(k in state.{A})))", "b": f"pick(state.{B}.filter(k, true))"},
                  f"Register a new {it} with id {{a}} under {gr} {{b}}.", [(name, {aid: "a", bid: "b"})])

    def _delete(self) -> None:
        it, A, aid, final = self.item.noun, self.A, self.aid, self.life.final
        name = f"delete_{it}"
        self.tool(name, f"Delete a {it} for good; only a {it} that is {final} may be deleted.",
                  {aid: {"type": "string"}}, [aid],
                  [self._exists(A, aid, it),
                   {"require": f"state.{A}[args.{aid}].status == '{final}'", "error": f"{it} {{args.{aid}}} is not {final}"},
                   {"delete": {"collection": A, "key": f"args.{aid}"}},
                   {"return": f"{{'{aid}': args.{aid}, 'deleted': true}}"}])
        self.goal(name, {"a": f"pick(state.{A}.filter(k, state.{A}[k].status == '{final}'))"},
                  f"Delete {it} {{a}}; it is {final}.", [(name, {aid: "a"})])

    def _priority(self) -> None:
        it, A, aid = self.item.noun, self.A, self.aid
        name = f"set_{it}_priority"
        self.tool(name, f"Change the priority of a {it} (low, normal or high).",
                  {aid: {"type": "string"}, "priority": {"enum": PRIORITIES}}, [aid, "priority"],
                  [self._exists(A, aid, it),
                   {"set": {"collection": A, "key": f"args.{aid}", "field": "priority", "value": "args.priority"}},
                   {"return": f"{{'{aid}': args.{aid}, 'priority': args.priority}}"}])
        pri = ", ".join(f"'{p}'" for p in PRIORITIES)
        self.goal(name, {"a": f"pick(state.{A}.filter(k, true))",
                         "p": f"pick([{pri}].filter(x, x != {self._rec('a')}.priority))"},
                  f"Set the priority of {it} {{a}} to {{p}}.", [(name, {aid: "a", "priority": "p"})])
        self.goal(f"{it}_priority", {"a": f"pick(state.{A}.filter(k, true))"},
                  f"What priority does {it} {{a}} have?", [(f"get_{it}", {aid: "a"})], f"{self._rec('a')}.priority")

    def _census(self) -> None:
        A = self.A
        name = f"count_{A}_by_status"
        self.tool(name, f"How many {A} currently have a given status.",
                  {"status": {"enum": self.life.statuses}}, ["status"],
                  [{"return": f"size(state.{A}.filter(k, state.{A}[k].status == args.status))"}])
        sts = ", ".join(f"'{s}'" for s in self.life.statuses)
        self.goal(name, {"s": f"pick([{sts}])"}, f"How many {A} are {{s}} right now?", [(name, {"status": "s"})],
                  f"size(state.{A}.filter(k, state.{A}[k].status == s))")


def fingerprint(data: dict[str, Any]) -> str:
    """Structure without the name: two domains with equal fingerprints are the same domain."""
    body = {k: v for k, v in data.items() if k not in ("domain", "description")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def draw_domain(rng: random.Random, n: int) -> dict[str, Any]:
    """One domain (as YAML-ready data) from the grammar."""
    item = rng.choice(ITEMS)
    group = rng.choice(GROUPS)
    life = rng.choice([lc for lc in LIFECYCLES if lc.kind in item.kinds])
    families = [f for f in OPTIONAL if rng.random() < 0.55]
    families = [f for f in families if _NEEDS.get(f) is None or _NEEDS[f] in families]
    return _Builder(rng, item, group, life, families, n).build()


def draw_domains(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """An endless stream of distinct domains (caller takes as many as it needs)."""
    rng = random.Random(f"offline:{seed}")
    seen: set[str] = set()
    n = 0
    while True:
        data = draw_domain(rng, n)
        fp = fingerprint(data)
        if fp in seen:
            continue
        seen.add(fp)
        n += 1
        yield data


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml: ~10x faster
    def ignore_aliases(self, data: Any) -> bool:  # shared lists are written out, not as &anchors
        return True


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True, default_flow_style=None)


# -- validation in worker processes ----------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(lengths: list[int], seeds: list[int], existing: list[dict[str, Any]]) -> None:
    from toolzoo.synth.validate import ExistingTool

    _WORKER.update(lengths=lengths, seeds=seeds, existing=[ExistingTool(**e) for e in existing])


def _validate_job(job: tuple[str, str]) -> tuple[str, dict[str, Any]]:
    from toolzoo.synth.validate import validate_domain

    name, text = job
    result = validate_domain(text, text=True, lengths=_WORKER["lengths"], seeds=_WORKER["seeds"],
                             existing=_WORKER["existing"])
    return name, result.model_dump(mode="json")


def _builtin_tools() -> list[dict[str, Any]]:
    from toolzoo.synth.validate import existing_tools
    from toolzoo.tools.zoo import builtin_names, get_domain

    return [e.model_dump() for e in existing_tools(get_domain(n) for n in builtin_names())]


def synthesize_offline(count: int, seed: int, out_dir: str | Path, *, workers: int | None = None,
                       lengths: list[int] | None = None, seeds: list[int] | None = None,
                       progress: bool = False) -> SynthReport:
    """Write ``count`` distinct, validated domains to ``out_dir`` (``<name>.yaml``) and a report.

    Candidates that fail validation are replaced by fresh draws (and counted as rejected)."""
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lengths = lengths or list(range(1, 9))
    seeds = seeds or [0, 1]
    workers = workers or min(2, os.cpu_count() or 1)
    report = SynthReport(mode="offline", seed=seed)
    stream = draw_domains(count, seed)
    texts: dict[str, tuple[dict[str, Any], str]] = {}

    def jobs(n: int) -> list[tuple[str, str]]:
        batch = []
        for _ in range(n):
            data = next(stream)
            text = to_yaml(data)
            texts[data["domain"]] = (data, text)
            batch.append((data["domain"], text))
        return batch

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    init = (lengths, seeds, _builtin_tools())
    bar = _bar(count, progress)
    with ctx.Pool(workers, initializer=_init_worker, initargs=init) if workers > 1 else _Serial(init) as pool:
        pending = jobs(count)
        while pending and report.accepted < count:
            for name, raw in pool.imap_unordered(_validate_job, pending, chunksize=8):
                from toolzoo.synth.validate import ValidationResult

                result = ValidationResult.model_validate(raw)
                data, text = texts.pop(name)
                report.generated += 1
                rec = DomainRecord(name=name, category=data["category"], seconds=result.seconds,
                                   tasks=result.tasks, oracle_successes=result.oracle_successes)
                if result.ok and report.accepted < count:
                    path = out / f"{name}.yaml"
                    path.write_text(text)
                    rec.status, rec.path = "accepted", str(path)
                    report.accepted += 1
                    bar(report.accepted)
                else:
                    rec.status, rec.reasons = "rejected", result.reasons or ["surplus"]
                    rec.errors = [i.detail for i in result.issues[:5]]
                    report.rejected += 1
                report.domains.append(rec)
            pending = jobs(count - report.accepted) if report.accepted < count else []
    report.count_reasons()
    report.seconds = round(time.perf_counter() - started, 3)
    report.write(out / "synth_report.json")
    return report


class _Serial:
    """A one-process stand-in for ``multiprocessing.Pool`` (workers=1: tests, debugging)."""

    def __init__(self, init: tuple) -> None:
        _init_worker(*init)

    def imap_unordered(self, fn: Any, items: list, chunksize: int = 1) -> Iterator:
        return map(fn, items)

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return lambda done: None
    last = [0.0]

    def update(done: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 2 or done == total:
            last[0] = now
            print(f"  validated {done}/{total} domains", flush=True)
    return update
