"""The offline generator: distinct, valid domains; every family of operations and goals occurs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from hypothesis import given, settings, strategies as st

from toolzoo.envs.taskgen import TaskGenerationError, TaskGenerator
from toolzoo.synth.grammar import CATEGORIES, ITEMS
from toolzoo.synth.offline import OPTIONAL, draw_domains, fingerprint, synthesize_offline
from toolzoo.synth.report import DomainRecord, SynthReport
from toolzoo.synth.validate import unreachable_tools
from toolzoo.tools.loader import load_domain


def test_synthesize_offline_writes_valid_distinct_domains(tmp_path: Path) -> None:
    report = synthesize_offline(6, seed=3, out_dir=tmp_path, workers=2, lengths=[1, 2, 4, 8], seeds=[0])
    assert (report.generated, report.accepted, report.rejected) == (6, 6, 0)
    files = sorted(tmp_path.glob("*.yaml"))
    assert len(files) == 6
    domains = [load_domain(f) for f in files]
    assert len({d.name for d in domains}) == 6 and all(f.stem == d.name for f, d in zip(files, domains))
    assert all(d.spec.category in CATEGORIES and not unreachable_tools(d.spec) for d in domains)
    assert all(r.tasks == r.oracle_successes == 4 for r in report.domains)
    saved = json.loads((tmp_path / "synth_report.json").read_text())
    assert saved["accepted"] == 6 and saved["mode"] == "offline"
    # Chains of length 16 are usually placeable (lookups always are).
    placed = 0
    for d in domains:
        try:
            TaskGenerator(d).generate(seed=5, length=16)
            placed += 1
        except TaskGenerationError:
            pass
    assert placed == len(domains)


def test_draws_are_distinct_and_cover_the_grammar() -> None:
    stream = draw_domains(0, seed=0)
    drawn = [next(stream) for _ in range(300)]
    assert len({fingerprint(d) for d in drawn}) == 300
    assert len({d["domain"] for d in drawn}) == 300
    tools = Counter()
    kinds = Counter()
    for d in drawn:
        for t in d["tools"]:
            tools[t["name"].split("_")[0]] += 1
            for e in t["effects"]:
                kinds.update(k for k in e if k != "error")
    # lookups, status changes, counters, transfers, relations, inserts, deletes, census
    for verb in ("get", "add", "remove", "transfer", "reassign", "set", "register", "delete", "count", "list"):
        assert tools[verb] > 0, verb
    assert set(kinds) == {"require", "set", "insert", "delete", "return"}
    goals = Counter()
    for d in drawn:
        for s in d["subtasks"]:
            uses_prev = any("prev" in v for v in s["bind"].values())
            goals["chained" if uses_prev else "answer" if "answer" in s else "mutate"] += 1
    assert min(goals.values()) > 100, goals
    assert len({d["domain"].split("_")[0] for d in drawn}) > 30 and len(ITEMS) >= 40 and len(OPTIONAL) >= 8


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["accepted", "rejected"]),
                          st.lists(st.sampled_from(["load_error", "oracle_failure", "unreachable_tool"]), max_size=3)),
                max_size=20))
def test_report_reason_counts(records: list) -> None:
    report = SynthReport(mode="offline")
    for i, (status, reasons) in enumerate(records):
        report.domains.append(DomainRecord(name=f"d{i}", status=status, reasons=reasons))
    report.count_reasons()
    for reason, n in report.reasons.items():
        assert n == sum(1 for s, rs in records if s == "rejected" and reason in rs)
    assert sum(report.reasons.values()) == sum(len(set(rs)) for s, rs in records if s == "rejected")


def test_synth_command_offline(tmp_path: Path) -> None:
    from rich.console import Console

    from toolzoo.synth.cli import synth_command

    console = Console(width=120, record=True)
    assert synth_command(str(tmp_path), offline=True, count=2, seed=1, workers=1, console=console) == 0
    assert len(list(tmp_path.glob("*.yaml"))) == 2
    text = console.export_text()
    assert "accepted" in text and "synth_report.json" in text
    assert synth_command(str(tmp_path / "llm"), console=console) == 2  # no --model without --offline
