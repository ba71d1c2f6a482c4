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
    """Makes one agent per episode through the agent registry (``toolzoo.agents.registry``:
    one file per kind, ``kind: python`` for a class named in the config); endpoint-backed
    kinds share one pooled client, the hf kind one batching model."""

    def __init__(self, config: AgentConfig):
        from toolzoo.agents.registry import build_kind

        self.config = config
        self._kind = build_kind(config)

    @property
    def kind(self) -> Any:
        """The registered kind behind this factory (``agents.registry.AgentKind``)."""
        return self._kind

    def make(self, episode_id: str = "") -> Any:
        """A fresh agent for one episode; scripted agents draw their randomness from the
        episode id, so trials of one task fail independently."""
        return self._kind.make(episode_id)

    async def aclose(self) -> None:
        await self._kind.aclose()


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
