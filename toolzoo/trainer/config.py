"""The Train format (``toolzoo train CONFIG.yaml``): pydantic models, loaded with line-numbered
errors through :func:`toolzoo.config.load_yaml_model`. ``toolzoo schema train`` prints its
JSON Schema. ``algorithm`` is a Literal of the algorithm registry's names
(``toolzoo.trainer.algorithms``: one file per algorithm, ``@register_algorithm``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from toolzoo.config import load_yaml_model
from toolzoo.envs.run_config import SandboxConfig
from toolzoo.envs.taskgen import GeneratorOptions
from toolzoo.trainer.algorithms import algorithm_names
from toolzoo.trainer.lora import LoRAConfig
from toolzoo.trainer.losses import LossType
from toolzoo.trainer.tiny import TinySpec

Algorithm = Literal[algorithm_names()]  # the registry's names (trainer/algorithms/, one file each)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """Exactly one of ``path`` (a local Hugging Face checkpoint, or a registered model name such
    as ``smollm2-135m-instruct``: ``toolzoo model list``) or ``tiny`` (build one from scratch:
    tokenizer trained on the domains' texts and the SFT conversations). ``model: NAME`` alone
    is short for ``model: {path: NAME}``."""

    path: str | None = None
    tiny: TinySpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _name(cls, v):
        return {"path": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one(self) -> ModelConfig:
        if (self.path is None) == (self.tiny is None):
            raise ValueError("give exactly one of `path` or `tiny`")
        return self


class SFTSource(_Strict):
    """Where SFT conversations come from. ``source``: ``oracle`` (episodes of the oracle agent
    with the scripted user on the configured domains and lengths), a ``.jsonl`` file in the
    SFT export format (``{"messages": [...], "tools": [...]}`` per line), or a run folder whose
    ``trajectories.jsonl`` is filtered by ``min_score`` (the outcome reward)."""

    source: str = "oracle"
    min_score: float = 1.0
    episodes: int = Field(200, ge=1, description="oracle: episodes to generate (spread over lengths)")
    steps: int = Field(0, ge=0, description="with algorithm grpo: SFT steps before GRPO (0: none)")
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    warmup_steps: int = Field(10, ge=0)


class RolloutConfig(_Strict):
    backend: Literal["hf", "vllm"] = "hf"
    temperature: float = Field(1.0, gt=0)
    max_new_tokens: int = Field(64, ge=1, description="per assistant turn")
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="vllm only")
    seed_per_episode: bool = Field(False, description="hf: every episode samples from its own generator seeded "
                                   "from (seed, policy version, episode id), so local and --ray training sample "
                                   "the same episodes; its turns then decode alone (slower)")


class OverlongConfig(_Strict):
    """DAPO's soft overlong penalty on an episode's sampled tokens: 0 up to max_len - cache,
    linear to -1 at max_len (``max_completion_length``), -1 beyond; added to the reward."""

    enabled: bool = False
    cache: int = Field(16, ge=1)


class DistillConfig(_Strict):
    """π-Distill and OPSD (``algorithm: pi_distill | opsd``; docs/training.md). The teacher is
    the same weights with the privileged information (PI) rendered from the task's reference
    trace in the system prompt; group size, batch, loss_type, eps and the learning rate are the
    top-level knobs."""

    privileged: Literal["full_trace", "tool_names", "hint"] = "full_trace"
    alpha: float = Field(0.5, ge=0, le=1, description="pi_distill: weight of the teacher objective (1-alpha: student)")
    beta: float = Field(0.05, ge=0, description="pi_distill: KL weight, KL(T||sg S) in J_T and KL(sg T||S) in J_S")
    is_clip: float = Field(1.0, gt=0, description="pi_distill: truncation of the student's importance weight")
    student_on: Literal["all", "success"] = "all"
    student_signal: Literal["reward", "advantage"] = Field(
        "reward", description="pi_distill: R (the paper's J_S) or the group advantage weighs the student term")
    teacher: Literal["self_privileged", "frozen_initial"] = Field(
        "self_privileged", description="opsd: who scores the student's tokens (both with PI in context)")
    kl_coef: float = Field(1.0, ge=0, description="opsd: weight of the per-token reverse-KL advantage")
    outcome_weight: float = Field(0.0, ge=0, description="opsd: weight of the group outcome advantage")
    warmup_view: Literal["plain", "privileged", "both"] = Field(
        "both", description="SFT warm-up (sft.steps) conversations: without PI, with PI, or both")


class EvalConfig(_Strict):
    every: int = Field(0, ge=0, description="evaluate every k steps (0: only at the end)")
    lengths: list[int] = Field(default_factory=lambda: [1, 2])
    tasks_per_length: int = Field(20, ge=1)
    seed: int = Field(1_000_000, description="task seeds of the held-out evaluation tasks start here")
    at_start: bool = False
    teacher: bool | None = Field(None, description="also evaluate with the PI in context (the teacher view, "
                                                   "distill.privileged); default: on for pi_distill and opsd")

    @field_validator("lengths")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(x < 1 for x in v):
            raise ValueError("lengths must be positive integers")
        return sorted(set(v))


class TrainConfig(_Strict):
    train: str
    algorithm: Algorithm = "grpo"
    model: ModelConfig
    domains: list[str] = Field(min_length=1)
    lengths: list[int] = Field(default_factory=lambda: [1, 2])
    generator: GeneratorOptions = Field(default_factory=GeneratorOptions)
    # The reward, scored exactly as `toolzoo run` scores it (toolzoo.envs.scorer.Scorer).
    judges: list[str | dict[str, Any]] = Field(default_factory=lambda: ["verifiable"],
                                               description="as the Run format's judges: verifiable and rubric entries")
    judge_combine: Literal["product", "weighted_sum"] = "product"
    judge_weights: dict[str, float] = Field(default_factory=dict)
    user_mode: Literal["per_turn", "all_at_once"] = "per_turn"
    max_turns: int = Field(8, ge=1, description="assistant messages per training episode")
    episode_wall_time_s: float = Field(300.0, gt=0, description="the agent's time per episode (rollouts and "
                                       "evaluation): a CPU decoding dozens of long episodes in one batch needs more")
    seed: int = 0

    steps: int = Field(100, ge=0, description="steps of `algorithm` (SFT steps when algorithm is sft)")
    learning_rate: float = Field(1e-4, gt=0)
    batch: int = Field(4, ge=1, description="grpo: tasks per step")
    group_size: int = Field(4, ge=1, description="grpo: episodes per task")
    loss_type: LossType = "grpo"
    eps_low: float = Field(0.2, ge=0)
    eps_high: float | None = Field(None, ge=0, description="DAPO clip-higher: 0.28")
    beta: float = Field(0.0, ge=0, description="KL weight to the starting policy (k3)")
    max_completion_length: int | None = Field(None, ge=1, description="dr_grpo normaliser; overlong max_len")
    dynamic_sampling: bool = False
    overlong: OverlongConfig = Field(default_factory=OverlongConfig)
    max_grad_norm: float | None = 1.0
    micro_batch: int | None = Field(None, ge=1, description="sequences per forward/backward (every algorithm), "
                                                            "gradients accumulated (None: the whole batch)")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward (less memory)")
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="bf16 autocast of the training forward; auto: where the device supports it (CUDA)")
    tis_cap: float | None = Field(None, gt=0, description="grpo: truncated importance-sampling weight "
                                                          "min(pi/mu, cap) for sampler/learner mismatch")
    lora: LoRAConfig | None = Field(None, description="train a LoRA adapter (peft) instead of all weights")
    cpu_budget_s: float | None = Field(None, gt=0, description="stop training once the process has used this "
                                       "much CPU time (all threads, from the first step), then evaluate")

    sandbox: SandboxConfig = Field(default_factory=SandboxConfig,
                                   description="where rollouts, SFT oracle episodes and evaluation run: the Run "
                                               "format's section (tier, transport, limits, pool)")
    sft: SFTSource = Field(default_factory=SFTSource)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint_every: int = Field(0, ge=0, description="0: only the initial and final checkpoints")
    max_off_policy_steps: int = Field(1, ge=0, description="--ray grpo on full weights: how many policy versions "
                                      "a rollout may lag (0: lock-step rollouts, as every other algorithm and LoRA)")
    output: str = "runs/train"
    tensorboard: bool = Field(False, description="also log to TensorBoard when it is importable")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$",
                        description="where the model trains and decodes: auto (cuda when torch sees one, else cpu), "
                                    "cpu, cuda, cuda:N or mps")

    @field_validator("lengths")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(x < 1 for x in v):
            raise ValueError("lengths must be positive integers")
        return sorted(set(v))

    @model_validator(mode="after")
    def _knobs(self) -> TrainConfig:
        if self.overlong.enabled and self.max_completion_length is None:
            raise ValueError("overlong.enabled needs max_completion_length")
        if self.overlong.enabled and self.overlong.cache >= self.max_completion_length:
            raise ValueError("overlong.cache must be smaller than max_completion_length")
        return self


def resolve_device(name: str) -> str:
    """The torch device a ``device:`` setting means here; asking for an accelerator torch does
    not see is an error at start, never a silent fall back to the CPU."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device: {name} but torch {torch.__version__} sees no CUDA device "
                             "(a CPU-only build, or no GPU visible); use device: auto or cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"device: {name} but torch sees {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device: mps but torch sees no MPS device; use device: auto or cpu")
    return name


def load_train_config(path: str | Path) -> TrainConfig:
    """Load and validate; relative paths (model, domain YAMLs, SFT source, output) are relative
    to the config file."""
    config, _ = load_yaml_model(TrainConfig, path)
    base = Path(path).parent

    def rel(p: str) -> str:
        return p if Path(p).is_absolute() else str((base / p).resolve())

    config.domains = [rel(d) if d.endswith((".yaml", ".yml")) else d for d in config.domains]
    if config.model.path and (base / config.model.path).exists():
        config.model.path = rel(config.model.path)
    if config.sft.source != "oracle":
        config.sft.source = rel(config.sft.source)
    return config
