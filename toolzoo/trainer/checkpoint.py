"""Training checkpoints: ``<output>/checkpoints/step_N/`` holds a standard Hugging Face
checkpoint (``save_pretrained`` of model and tokenizer: loadable by ``AutoModelForCausalLM``,
``toolzoo serve-model`` and vLLM) plus ``trainer_state.pt`` (optimizer, scheduler, step,
phase and every RNG state) for ``--resume``."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
_STEP = re.compile(r"^step_(\d+)$")


def rng_state(extra: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "generators": {k: g.get_state() for k, g in (extra or {}).items()}}


def set_rng_state(state: dict[str, Any], extra: dict[str, torch.Generator] | None = None) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    for k, g in (extra or {}).items():
        if k in state.get("generators", {}):
            g.set_state(state["generators"][k])


def save_checkpoint(path: Path, model, tokenizer, trainer_state: dict[str, Any] | None = None) -> Path:
    """Write atomically enough for resume: into ``path.tmp``, then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    from toolzoo.trainer.lora import save_model

    save_model(tmp, model, tokenizer)  # a LoRA policy: adapter/ and the merged model
    if trainer_state is not None:
        torch.save(trainer_state, tmp / STATE_FILE)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def latest_checkpoint(output: Path) -> Path | None:
    """The highest ``step_N`` under ``output/checkpoints`` that has a trainer state."""
    root = output / "checkpoints"
    found = []
    for p in root.glob("step_*") if root.exists() else []:
        m = _STEP.match(p.name)
        if m and (p / STATE_FILE).exists():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def load_trainer_state(path: Path) -> dict[str, Any]:
    return torch.load(path / STATE_FILE, weights_only=False)
