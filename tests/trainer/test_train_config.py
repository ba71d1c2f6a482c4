"""The Train format: validation with line numbers, relative paths, the dispatch table."""

from __future__ import annotations

import pytest

from toolzoo.config import LoadError
from toolzoo.trainer.config import Algorithm, TrainConfig, load_train_config
from toolzoo.trainer.loop import ALGORITHMS


def test_every_algorithm_has_a_phase_builder():
    assert set(Algorithm.__args__) == set(ALGORITHMS)


def test_errors_carry_lines(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("train: x\nmodel: {path: m, tiny: {}}\ndomains: [retail_orders]\n"
                 "loss_type: ppo\nsteps: -1\n")
    with pytest.raises(LoadError) as e:
        load_train_config(p)
    text = str(e.value)
    assert f"{p}:2 model" in text and "exactly one" in text
    assert f"{p}:4 loss_type" in text
    assert f"{p}:5 steps" in text


def test_overlong_needs_a_length():
    with pytest.raises(ValueError, match="max_completion_length"):
        TrainConfig(train="x", model={"path": "m"}, domains=["retail_orders"], overlong={"enabled": True})


def test_relative_paths_resolve_against_the_config(tmp_path):
    (tmp_path / "dom.yaml").write_text("x")
    (tmp_path / "ckpt").mkdir()
    p = tmp_path / "t.yaml"
    p.write_text("train: x\nmodel: {path: ckpt}\ndomains: [dom.yaml, retail_orders]\nsft: {source: data.jsonl}\n")
    cfg = load_train_config(p)
    assert cfg.domains == [str(tmp_path / "dom.yaml"), "retail_orders"]
    assert cfg.model.path == str(tmp_path / "ckpt")
    assert cfg.sft.source == str(tmp_path / "data.jsonl")


def test_example_config_loads():
    from pathlib import Path

    cfg = load_train_config(Path(__file__).parents[2] / "examples" / "train_sft_grpo.yaml")
    assert cfg.algorithm == "grpo" and cfg.sft.steps > 0 and cfg.model.tiny is not None


def test_schema_exports():
    from toolzoo.schemas import json_schema

    s = json_schema("train")
    assert "algorithm" in s["properties"] and "rollout" in s["properties"]


def test_device_setting_is_checked_at_load(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("train: x\nmodel: {path: m}\ndomains: [retail_orders]\ndevice: gpu0\n")
    with pytest.raises(LoadError) as e:
        load_train_config(p)
    assert f"{p}:4 device" in str(e.value)


def test_auto_device_follows_torch():
    import torch

    from toolzoo.trainer.config import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_missing_accelerator_is_an_error_not_a_cpu_fallback():
    import torch

    from toolzoo.trainer.config import resolve_device

    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ValueError, match="sees no CUDA device"):
            resolve_device("cuda")
