"""export sft: only passing trajectories; datasets loads it; a chat template renders it with
tools; toolzoo's trainer tokenizes it; TRL's SFTTrainer takes a step on it."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from toolzoo.core import Outcome

from toolzoo.rubrics.apply import build_judges
from toolzoo.rubrics.commands import export_sft_command
from toolzoo.rubrics.export import export_sft, read_sft

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def judged_run(noisy_run, tmp_path_factory):
    """The noisy run, re-stored with rubric scores (as the runner hook will store them)."""
    cfg, _, trajs = noisy_run
    run_dir = tmp_path_factory.mktemp("judged")
    trajs = [t.model_copy(deep=True) for t in trajs]
    js = build_judges(["verifiable", {"rubric": "default", "checks_only": True}], run_dir, None,
                      combine="weighted_sum", domains=cfg.domains)

    async def go():
        for t in trajs:
            await js.apply(t.task, t)
    asyncio.run(go())
    (run_dir / "config.yaml").write_text("domains: [retail_orders]\n")
    (run_dir / "trajectories.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in trajs))
    return run_dir, trajs


def test_only_passing_trajectories(judged_run, tmp_path):
    run_dir, trajs = judged_run
    out = tmp_path / "sft.jsonl"
    n = export_sft(run_dir, out, min_score=1.0)
    passing = [t for t in trajs if t.outcome.reward >= 1.0]
    assert n == len(passing) == sum(t.outcome.success for t in trajs) and 0 < n < len(trajs)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["meta"]["episode_id"] for r in rows] == [t.episode_id for t in passing]
    for r in rows:
        assert r["messages"][-1]["role"] == "assistant"
        assert {t["function"]["name"] for t in r["tools"]} >= {"refund_order", "get_order"}
        calls = [c for m in r["messages"] for c in m.get("tool_calls") or []]
        assert calls and all(isinstance(c["function"]["arguments"], str) for c in calls)
    # a lower bar on one rubric lets partial episodes in; a bar above 1 lets none
    m = export_sft(run_dir, tmp_path / "b.jsonl", min_score=0.5, score_name="default")
    assert m == sum(t.scores["default"].value >= 0.5 for t in trajs) > n
    assert export_sft(run_dir, tmp_path / "c.jsonl", min_score=1.01) == 0
    assert export_sft_command(str(run_dir), str(tmp_path / "d.jsonl"), 1.0) == 0


def test_judge_failures_are_not_exported(judged_run, tmp_path):
    run_dir, trajs = judged_run
    bad = [t.model_copy(deep=True) for t in trajs]
    for t in bad:
        t.outcome = Outcome.judge_failed("judge down", t.outcome)  # outcomes are frozen: a new one
    d = tmp_path / "run"
    d.mkdir()
    (d / "trajectories.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in bad))
    assert export_sft(d, tmp_path / "x.jsonl", min_score=0.0) == 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    from toolzoo.trainer.tiny import TinySpec, build_tiny

    corpus = ["Please refund my order o0042.", "What is the status of order o0013?",
              "get_order refund_order order_id customer_id status delivered refunded"] * 3
    return build_tiny(tmp_path_factory.mktemp("tiny"), corpus,
                      TinySpec(hidden_size=32, num_layers=1, intermediate_size=64, num_heads=2, num_kv_heads=1))


def test_readers_render_it(judged_run, tmp_path, tiny):
    import datasets
    from transformers import AutoTokenizer

    from toolzoo.trainer.data import tokenize_conversation

    run_dir, _ = judged_run
    out = tmp_path / "sft.jsonl"
    n = export_sft(run_dir, out, min_score=1.0)
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert len(ds) == n and {"messages", "tools"} <= set(ds.column_names)
    tok = AutoTokenizer.from_pretrained(tiny)
    row = ds[0]
    text = tok.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
    assert "refund_order" in text and row["messages"][1]["content"] in text
    first_call = next(c for m in row["messages"] for c in m.get("tool_calls") or [])
    assert json.loads(first_call["function"]["arguments"])  # survives the Arrow round trip
    # toolzoo's own trainer path
    convs = read_sft(out)
    assert len(convs) == n
    tc = tokenize_conversation(tok, *convs[0])
    assert len(tc.input_ids) == len(tc.assistant_mask) and 0 < sum(tc.assistant_mask) < len(tc.input_ids)


@pytest.mark.slow
def test_trl_sft_trainer_takes_a_step(judged_run, tmp_path, tiny):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    run_dir, _ = judged_run
    out = tmp_path / "sft.jsonl"
    export_sft(run_dir, out, min_score=1.0)
    ds = datasets.load_dataset("json", data_files=str(out), split="train").remove_columns(["meta"])
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    args = SFTConfig(output_dir=str(tmp_path / "trl"), max_steps=1, per_device_train_batch_size=2, report_to=[],
                     use_cpu=True, save_strategy="no", logging_steps=1, max_length=1024, dataloader_num_workers=0)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0


def test_toolzoo_trainer_reads_the_export(judged_run, tmp_path):
    from toolzoo.trainer.sft_data import from_export

    run_dir, _ = judged_run
    out = tmp_path / "sft.jsonl"
    n = export_sft(run_dir, out, min_score=1.0)
    convs = from_export(out)
    assert len(convs) == n
    assert [(m.role, m.content) for m in convs[0][0]] == [(m.role, m.content) for m in read_sft(out)[0][0]]
    assert {t.name for t in convs[0][1]} == {t.name for t in read_sft(out)[0][1]}
