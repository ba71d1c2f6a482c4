"""The one training driver: everything ``toolzoo train`` does around its phases, shared by the
local loop (``trainer.loop.train``) and the Ray path (``cluster.ray_train.train_on_ray``).

Setup (output folder, threads, device, config copy, Python/numpy/torch seeds, tasks, resume
from the latest checkpoint with its RNG states, the starting model with LoRA and gradient
checkpointing), the per-step emit (evaluation every ``eval.every`` and at the end, metrics
JSONL and TensorBoard, progress, checkpoints with optimizer/scheduler/RNG state), the CPU
budget and the final checkpoint and summary live here once, so the two paths cannot drift:
only how a GRPO step's rollouts are produced differs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from toolzoo.trainer.checkpoint import latest_checkpoint, load_trainer_state, rng_state, save_checkpoint, set_rng_state
from toolzoo.trainer.config import TrainConfig, resolve_device
from toolzoo.trainer.episodes import Tasks
from toolzoo.trainer.runlog import MetricsLog, ProgressBar

log = logging.getLogger("toolzoo.trainer")


class TrainRun:
    """One training run's shared state. ``step`` is the global step reached; ``state`` the
    resumed checkpoint's trainer state (None on a fresh start); ``start_path`` the checkpoint
    folder the policy was loaded from (what Ray workers load before receiving weights)."""

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, progress: bool = True, label: str = "train"):
        from toolzoo.trainer.loop import Context, base_model_path

        self.cfg, self.progress, self.label = cfg, progress, label
        self.out = out = Path(cfg.output)
        out.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)  # before any work: a wrong device fails at once
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        torch.manual_seed(cfg.seed)

        self.ckpt = latest_checkpoint(out) if resume else None
        self.state = load_trainer_state(self.ckpt) if self.ckpt is not None else None
        self.ctx = Context(config=cfg, model=None, tokenizer=None, out=out, rng=random.Random(cfg.seed),
                           tasks=Tasks(cfg.generator))
        self._convs: list = []
        # a full checkpoint holds the policy; a LoRA one only its adapter, over the base model
        resumed_whole = self.ckpt is not None and cfg.lora is None
        self.start_path = self.ckpt if resumed_whole else base_model_path(cfg, out, self.convs)
        self.ctx.model, self.ctx.tokenizer = self._load(self.start_path)

        self.step = 0
        if self.state is not None:
            self.step = self.state["step"]
            self.ctx.rng.setstate(self.state["rng_trainer"])
            set_rng_state(self.state["rng"], self.ctx.generators)
            self.ctx.policy_version = self.state.get("policy_version", 0)
            log.info("resuming from %s (step %d)", self.ckpt, self.step)
        elif cfg.checkpoint_every:
            save_checkpoint(out / "checkpoints" / "step_0", self.ctx.model, self.ctx.tokenizer, None)
        self.metrics = MetricsLog(out, self.step if self.state is not None else None, cfg.tensorboard)
        self.total = 0
        self.bar: ProgressBar | None = None
        self.last: dict[str, Any] = {}
        self.started = time.perf_counter()

    def convs(self) -> list:
        """The SFT conversations (built once, on first use)."""
        from toolzoo.trainer.loop import sft_conversations

        if not self._convs:
            self._convs.append(sft_conversations(self.ctx))
        return self._convs[0]

    def _load(self, base: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cfg, ckpt = self.cfg, self.ckpt
        model, tokenizer = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
        if ckpt is not None and cfg.lora is not None:  # base weights + the checkpoint's adapter
            from toolzoo.trainer.lora import ADAPTER_DIR, load_adapter

            model = load_adapter(ckpt / ADAPTER_DIR, base=model, trainable=True)
        elif cfg.lora is not None:
            from toolzoo.trainer.lora import apply_lora

            model = apply_lora(model, cfg.lora)
        if cfg.gradient_checkpointing:
            model.config.use_cache = False
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if cfg.lora is not None:
                model.enable_input_require_grads()  # frozen embeddings: checkpointed inputs need grad
        return model.to(self.device), tokenizer  # before any optimizer: its state lives with the weights

    # -- the run --------------------------------------------------------------------------------
    def begin(self, total: int) -> None:
        """Start counting ``total`` global steps (and the CPU budget); the optional start eval."""
        self.total = total
        self.bar = ProgressBar(total, self.step, self.progress, label=self.label)
        if self.cfg.eval.at_start and self.step == 0:
            self.metrics.write({"step": 0, "phase": "start", "eval": self.evaluate()})
        self.ctx.cpu_start = time.process_time()  # the budget counts training, not the start eval

    def evaluate(self, save_to: Path | None = None) -> dict[str, Any]:
        from toolzoo.trainer.loop import evaluate_policy

        return evaluate_policy(self.ctx, save_to=save_to)

    def emit(self, row: dict[str, Any], phase_state: dict[str, Any] | None) -> None:
        """One step's metrics row: evaluated when due, logged, shown, checkpointed when due
        (``phase_state``: the phase name, optimizer and scheduler state; None: not saved)."""
        cfg, s = self.cfg, row["step"]
        if cfg.eval.every and s % cfg.eval.every == 0 and s != self.total:
            row["eval"] = self.evaluate()
        if s == self.total:
            row["eval"] = self.evaluate(save_to=self.out / "eval")
        self.metrics.write(row)
        if self.bar is not None:
            self.bar.update(row)
        self.last = row
        if phase_state is not None and cfg.checkpoint_every and s % cfg.checkpoint_every == 0 and s != self.total:
            save_checkpoint(self.out / "checkpoints" / f"step_{s}", self.ctx.model, self.ctx.tokenizer, {
                "step": s, **phase_state, "rng": rng_state(self.ctx.generators), "rng_trainer": self.ctx.rng.getstate(),
                "policy_version": self.ctx.policy_version})

    def save_final(self) -> Path:
        """After the phases: an evaluation where a CPU budget stopped them (or where there was
        nothing to train), then ``final/``."""
        if self.ctx.out_of_budget() and self.step < self.total:
            self.last = {"step": self.step, "phase": "budget",
                         "cpu_s": round(time.process_time() - self.ctx.cpu_start, 1),
                         "eval": self.evaluate(save_to=self.out / "eval")}
            self.metrics.write(self.last)
        if self.total == 0:
            self.last = {"step": 0, "phase": "none", "eval": self.evaluate(save_to=self.out / "eval")}
            self.metrics.write(self.last)
        final = self.out / "final"
        save_checkpoint(final, self.ctx.model, self.ctx.tokenizer, None)
        return final

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.metrics.close()
        if self.ctx.rollouts is not None:
            self.ctx.rollouts.close()
        if self.ctx.backend is not None:
            self.ctx.backend.close()

    def summary(self, final: Path, **extra: Any) -> dict[str, Any]:
        out = {"train": self.cfg.train, "algorithm": self.cfg.algorithm, "device": self.device, "steps": self.step,
               "seconds": round(time.perf_counter() - self.started, 3), "last": self.last,
               "eval": self.last.get("eval"), "final": str(final), "metrics": str(self.metrics.path), **extra}
        (self.out / "summary.json").write_text(json.dumps(out, indent=2))
        return out


def optimizer_state(row: dict[str, Any], opt, sched) -> dict[str, Any]:
    """A local phase's checkpoint state for :meth:`TrainRun.emit`."""
    return {"phase": row["phase"], "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
