"""Build agents and user simulators from a run's config sections."""

from __future__ import annotations

from typing import Any

from toolzoo.envs.run_config import AgentConfig, UserConfig

_NOT_LLM = ("kind", "p", "seed", "path", "mode", "persona")


def _llm_config(section: Any) -> Any:
    from toolzoo.llm import LLMConfig

    fields = {k: v for k, v in section.model_dump().items() if k not in _NOT_LLM and v is not None}
    return LLMConfig(**fields)


class AgentFactory:
    """Makes one agent per episode; endpoint-backed agents share one pooled client."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self._client = None
        self._hf = None
        if config.kind == "openai":
            from toolzoo.llm import LLMClient

            self._client = LLMClient(_llm_config(config))

    def make(self, episode_id: str = "") -> Any:
        """A fresh agent for one episode; scripted agents draw their randomness from the
        episode id, so trials of one task fail independently."""
        kind = self.config.kind
        if kind == "oracle":
            from toolzoo.agents.scripted import OracleAgent

            return OracleAgent()
        if kind == "noisy_oracle":
            from toolzoo.agents.scripted import NoisyOracleAgent

            return NoisyOracleAgent(self.config.p, seed=f"{self.config.seed}:{episode_id}")
        if kind == "random":
            from toolzoo.agents.scripted import RandomAgent

            return RandomAgent(seed=f"{self.config.seed}:{episode_id}")
        if kind == "openai":
            from toolzoo.agents.openai import OpenAIAgent

            return OpenAIAgent(client=self._client)
        if kind == "hf":
            from toolzoo.agents.hf import HFAgent

            if self._hf is None:
                if not self.config.path:
                    raise ValueError("agent kind hf needs `path` (a local checkpoint)")
                extra = {k: v for k, v in (self.config.model_extra or {}).items()}
                self._hf = HFAgent(self.config.path, **extra)
            return self._hf
        raise ValueError(f"unknown agent kind {kind!r}")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class UserFactory:
    def __init__(self, config: UserConfig):
        self.config = config
        self._client = None
        if config.kind == "llm":
            from toolzoo.llm import LLMClient

            self._client = LLMClient(_llm_config(config))

    def make(self) -> Any:
        if self.config.kind == "scripted":
            from toolzoo.envs.scripted_user import ScriptedUser

            return ScriptedUser(mode=self.config.mode)
        from toolzoo.envs.llm_user import LLMUser

        return LLMUser(client=self._client, persona=self.config.persona)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
