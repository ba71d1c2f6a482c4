"""``toolzoo train`` end to end on a very small model: SFT warm-up, GRPO in real episodes,
metrics, checkpoints that plain transformers loads, resume, and the other SFT sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolzoo.core import FailureKind
from toolzoo.trainer.config import TrainConfig
from toolzoo.trainer.loop import train

DOMAIN = str(Path(__file__).parent / "data" / "tiny_shop.yaml")
TINY = {"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "num_heads": 2, "num_kv_heads": 1}


def _config(out: Path, **kw) -> TrainConfig:
    base = dict(train="t", algorithm="grpo", model={"tiny": TINY}, domains=[DOMAIN], lengths=[1],
                steps=2, batch=2, group_size=2, learning_rate=1e-3, max_turns=3,
                sft={"episodes": 6, "steps": 3, "batch_size": 4},
                eval={"lengths": [1], "tasks_per_length": 2}, rollout={"max_new_tokens": 8},
                checkpoint_every=2, output=str(out), threads=2)
    base.update(kw)
    return TrainConfig.model_validate(base)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    return out, train(_config(out), progress=False)


def test_metrics_and_summary(run):
    out, summary = run
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["phase"] for r in rows] == ["sft"] * 3 + ["grpo"] * 2
    for r in rows:
        assert {"loss", "lr", "seconds"} <= set(r)
    assert all("reward_mean" in r for r in rows[3:])
    final_eval = rows[-1]["eval"]
    assert final_eval["by_length"]["1"]["n"] == 2 and 0.0 <= final_eval["success"] <= 1.0
    assert summary["steps"] == 5 and summary["eval"] == final_eval
    assert (out / "eval" / "trajectories.jsonl").exists()


def test_checkpoints_load_with_plain_transformers(run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = run
    for d in (out / "checkpoints" / "step_0", out / "checkpoints" / "step_2", out / "final"):
        model = AutoModelForCausalLM.from_pretrained(d)
        tok = AutoTokenizer.from_pretrained(d)
        assert model.config.hidden_size == 32 and tok.eos_token == "<|im_end|>"
    assert (out / "checkpoints" / "step_4" / "trainer_state.pt").exists()


def test_resume_continues_from_latest_checkpoint(run, tmp_path):
    import shutil

    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "final")
    cfg = _config(copy, steps=4)  # two more GRPO steps than were run
    summary = train(cfg, resume=True, progress=False)
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]  # 5 was redone after step_4, no duplicates
    assert summary["steps"] == 7 and (copy / "final" / "config.json").exists()


def _export_line(tmp_path: Path) -> Path:
    from toolzoo.trainer.episodes import Tasks, oracle_episodes

    tasks = Tasks()
    trajs = oracle_episodes(tasks.draw([DOMAIN], [1], 3, 0), sources=tasks.sources)
    from toolzoo.trainer.episodes import domain_tools

    p = tmp_path / "sft.jsonl"
    with p.open("w") as f:
        for t in trajs:
            f.write(json.dumps({"messages": [m.to_openai() for m in t.messages],
                                "tools": [x.to_openai() for x in domain_tools(DOMAIN)]}) + "\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with (run_dir / "trajectories.jsonl").open("w") as f:
        for i, t in enumerate(trajs):
            if i == 0:  # one failed episode: filtered out by min_score
                t.outcome = t.outcome.model_copy(update={"success": False, "reward": 0.0, "failure": FailureKind.AGENT})
            f.write(t.model_dump_json() + "\n")
    return p


def test_sft_sources(tmp_path):
    from toolzoo.trainer.sft_data import load_conversations

    export = _export_line(tmp_path)
    convs = load_conversations(str(export), domains=[DOMAIN])
    assert len(convs) == 3 and convs[0][0][0].role == "system"
    assert {t.name for t in convs[0][1]} == {"get_order", "refund_order"}
    assert any(m.tool_calls for m in convs[0][0])
    from_run = load_conversations(str(tmp_path / "run"), domains=[DOMAIN], min_score=1.0)
    assert len(from_run) == 2 and {t.name for t in from_run[0][1]} == {"get_order", "refund_order"}
    with pytest.raises(FileNotFoundError):
        load_conversations(str(tmp_path / "missing.jsonl"), domains=[DOMAIN])


def test_sft_only_from_export(tmp_path):
    export = _export_line(tmp_path)
    out = tmp_path / "sft"
    summary = train(_config(out, algorithm="sft", steps=3, learning_rate=3e-3, checkpoint_every=0,
                            sft={"source": str(export), "batch_size": 2}), progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["sft"] * 3 and summary["steps"] == 3
    assert not (out / "checkpoints").exists() and (out / "final" / "config.json").exists()


# --------------------------------------------------------------------------- shared pieces (the Ray driver uses them too)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(warmup=st.integers(0, 20), steps=st.integers(1, 60), cosine=st.booleans())
def test_lr_factor_warms_up_then_holds_or_decays_to_a_tenth(warmup, steps, cosine):
    from toolzoo.trainer.schedule import lr_factor

    f = lr_factor(warmup, cosine, steps)
    vals = [f(i) for i in range(warmup + steps + 5)]
    assert vals[:warmup] == [(i + 1) / warmup for i in range(warmup)]
    after = vals[warmup:]
    assert all(0.1 - 1e-12 <= v <= 1.0 + 1e-12 for v in after)
    if cosine:
        assert all(a >= b - 1e-12 for a, b in zip(after, after[1:]))  # never rises again
        assert abs(f(max(steps, warmup + 1)) - 0.1) < 1e-9 and after[0] == 1.0
    else:
        assert set(after) == {1.0}


def test_metrics_log_resume_keeps_rows_up_to_the_checkpoint(tmp_path):
    from toolzoo.trainer.runlog import MetricsLog, bar_info

    log = MetricsLog(tmp_path, None)
    for s in range(1, 6):
        log.write({"step": s, "phase": "sft", "loss": 1.0 / s})
    assert MetricsLog(tmp_path, 3).path.read_text().count("\n") == 3  # resume at step 3: 4, 5 go
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    MetricsLog(tmp_path, None)  # a fresh run starts a fresh file
    assert not (tmp_path / "metrics.jsonl").exists()
    row = {"step": 4, "phase": "grpo", "loss": 0.5, "reward_mean": 0.25, "lag_max": 1, "eval": {"success": 0.5}}
    assert bar_info(row) == "grpo loss 0.5000 reward 0.250 lag<=1 eval 0.50"
    assert bar_info({"step": 1, "phase": "sft", "loss": 2.0}) == "sft loss 2.0000"
