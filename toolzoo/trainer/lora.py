"""LoRA adapters (peft) for every algorithm: the policy is base weights + an adapter; the
π-Distill/OPSD teacher is the same model with the PI in context, so teacher and student share
base and adapter by construction. Checkpoints hold both forms: ``adapter/`` (peft's
``save_pretrained``) and the merged model at the top (a plain checkpoint for vLLM,
``serve-model`` and ``AutoModelForCausalLM``); ``load_policy`` reads either."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

ADAPTER_DIR = "adapter"
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoRAConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, ge=1)
    alpha: float = Field(32.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = Field(default_factory=lambda: list(PROJECTIONS),
                                            description='module names, or "all-linear"')


def apply_lora(model, cfg: LoRAConfig):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                            target_modules=cfg.target_modules, task_type="CAUSAL_LM"))


def is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def save_model(path: Path, model, tokenizer) -> None:
    """``save_pretrained`` of a plain model; for a peft model the adapter into ``adapter/``
    and the merged weights at the top."""
    if not is_peft(model):
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        return
    model.save_pretrained(path / ADAPTER_DIR)
    tokenizer.save_pretrained(path / ADAPTER_DIR)
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(path)
    tokenizer.save_pretrained(path)


def is_adapter(path: Path) -> bool:
    return (Path(path) / "adapter_config.json").exists()


def load_adapter(path: Path, base=None, trainable: bool = False):
    """A peft model from an adapter folder, on ``base`` (default: the base it names, which
    may be a registered model name or a path)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from toolzoo.models import resolve_model

    if base is None:
        name = json.loads((Path(path) / "adapter_config.json").read_text())["base_model_name_or_path"]
        base = AutoModelForCausalLM.from_pretrained(resolve_model(name))
    return PeftModel.from_pretrained(base, path, is_trainable=trainable)
