"""``toolzoo model prepare``: the packaged GGUF becomes a plain Hugging Face checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.models.conftest import NAME
from toolzoo.models import get_model, list_models, resolve_model
from toolzoo.models.registry import DONE, ModelSpec, prepare_model, register_model


def test_registry_names_and_resolution(tmp_path, monkeypatch):
    assert NAME in [s.name for s in list_models()]
    assert get_model(NAME).tool_format == "generic"
    with pytest.raises(ValueError, match="already registered"):
        register_model(get_model(NAME))
    # a local path is itself; an unknown name is a path that does not exist (the loader says so)
    assert resolve_model(tmp_path) == tmp_path
    assert str(resolve_model("no/such/dir")) == "no/such/dir"
    with pytest.raises(KeyError, match="unknown model"):
        prepare_model("no-such-model")


def test_prepare_runs_once_and_is_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLZOO_MODELS_DIR", str(tmp_path))
    calls = []

    def prep(out):
        calls.append(out)
        (out / "config.json").write_text("{}")

    spec = register_model(ModelSpec(name="fake-test-model", description="", prepare=prep))
    try:
        p = resolve_model("fake-test-model")
        assert p == tmp_path / "fake-test-model" and (p / DONE).exists() and (p / "config.json").exists()
        assert resolve_model("fake-test-model") == p and len(calls) == 1  # cached
        prepare_model("fake-test-model", force=True)
        assert len(calls) == 2 and not (tmp_path / "fake-test-model.tmp").exists()
    finally:
        from toolzoo.models import registry

        registry._REGISTRY.pop(spec.name)


def test_checkpoint_is_plain_transformers(smollm2_dir, smollm2_tokenizer, smollm2):
    cfg = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["model_type"] == "llama"
    assert sum(p.numel() for p in smollm2.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert smollm2_tokenizer.eos_token == "<|im_end|>"
    text = smollm2_tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                 add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
def test_same_logits_as_the_gguf_load(smollm2_tokenizer, smollm2):
    """The saved weights are the GGUF's dequantised weights: identical logits."""
    from toolzoo.models.smollm2 import load_gguf

    ref, tok = load_gguf()
    ids = smollm2_tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    assert ids.tolist() == tok("The capital of France is", return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        a, b = smollm2(input_ids=ids).logits, ref.eval()(input_ids=ids).logits
    assert torch.equal(a, b)


def test_cli_model_commands(smollm2_dir):
    out = subprocess.run([sys.executable, "-m", "toolzoo.cli", "model", "path", NAME],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == str(smollm2_dir)
    out = subprocess.run([sys.executable, "-m", "toolzoo.cli", "model", "prepare", "nope"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown model" in out.stderr


def test_run_and_train_configs_take_the_name(smollm2_dir, tmp_path):
    from toolzoo.envs.factories import AgentFactory
    from toolzoo.envs.run_config import AgentConfig
    from toolzoo.trainer.config import TrainConfig
    from toolzoo.trainer.loop import base_model_path

    agent = AgentFactory(AgentConfig.model_validate({"kind": "hf", "model": NAME, "greedy": True})).make("e")
    assert agent.format.name == "generic" and agent.greedy
    assert agent.model.config.vocab_size == 49152
    cfg = TrainConfig.model_validate({"train": "t", "model": NAME, "domains": ["retail_orders"],
                                      "output": str(tmp_path)})
    assert cfg.model.path == NAME and base_model_path(cfg, tmp_path, lambda: []) == smollm2_dir
