"""The Run format (``toolzoo run CONFIG.yaml``): pydantic models, loaded with line-numbered errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from toolzoo.config import Lengths, load_yaml_model
from toolzoo.envs.episode import Limits
from toolzoo.envs.taskgen import GeneratorOptions
from toolzoo.sandbox.base import SandboxLimits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentConfig(BaseModel):
    """``kind`` picks the policy; other keys configure it (an ``openai`` agent takes the
    LLMConfig fields: base_url, model, api_key_env, timeout_s, max_retries, temperature, ...)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["openai", "oracle", "noisy_oracle", "random", "hf", "python"] = Field(
        "oracle", description='python: `class: "pkg.module:Class"` (other keys are its keyword arguments)')
    p: float = Field(0.1, ge=0.0, le=1.0, description="noisy_oracle: per-subtask failure probability")
    seed: int = 0
    path: str | None = Field(None, description="hf: local checkpoint directory")


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: Literal["scripted", "llm"] = "scripted"
    mode: Literal["per_turn", "all_at_once"] = "per_turn"
    persona: str | None = None


class SandboxConfig(_Strict):
    backend: Literal["inline", "process", "docker", "kubernetes"] = "inline"
    transport: Literal["direct", "mcp"] = "direct"
    limits: SandboxLimits = Field(default_factory=SandboxLimits)
    image: str | None = None
    allow_unisolated: bool = False
    pool: int = Field(0, ge=0, description="warm sandboxes kept per domain (0: create per episode)")
    options: dict[str, Any] = Field(default_factory=dict)


class RunConfig(_Strict):
    run: str
    domains: list[str] = Field(default_factory=list)
    task_suite: str | None = Field(None, description="a hand-written task suite YAML instead of generated tasks")
    lengths: Lengths = Field(default_factory=lambda: [1, 2, 4, 8])
    tasks_per_length: int = Field(10, ge=1)
    trials: int = Field(1, ge=1)
    seed: int = 0
    agent: AgentConfig = Field(default_factory=AgentConfig)
    user: UserConfig = Field(default_factory=UserConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    judges: list[str | dict[str, Any]] = Field(default_factory=lambda: ["verifiable"])
    judge_combine: Literal["product", "weighted_sum"] = "product"
    judge_weights: dict[str, float] = Field(default_factory=dict)
    generator: GeneratorOptions = Field(default_factory=GeneratorOptions)
    limits: Limits = Field(default_factory=Limits)
    tool_subset: dict[str, Any] | None = Field(
        None, description="{extra_domains: [...], extra_tools: K, seed: S, system_prompt: generate|none}")
    simulator: dict[str, Any] | None = Field(
        None, description="LLM world model for `simulate: llm` tools: {base_url, model, failure_rate, seed, ...}")
    max_infra_retries: int = Field(2, ge=0)
    max_harness_failures: int = Field(10, ge=1, description="harness failures in a row that stop the run")
    concurrency: int = Field(16, ge=1)
    output: str = "runs/run"
    report: bool = True

    @model_validator(mode="after")
    def _tasks_from_somewhere(self) -> RunConfig:
        if not self.domains and not self.task_suite:
            raise ValueError("give `domains` (generated tasks) or `task_suite` (a task suite YAML)")
        return self



def load_run_config(path: str | Path) -> RunConfig:
    config, _ = load_yaml_model(RunConfig, path)
    base = Path(path).parent
    # Domain paths are relative to the config file; built-in names stay names.
    config.domains = [str((base / d).resolve()) if d.endswith((".yaml", ".yml")) and not Path(d).is_absolute()
                      else d for d in config.domains]
    if config.task_suite and not Path(config.task_suite).is_absolute():
        config.task_suite = str((base / config.task_suite).resolve())
    return config
