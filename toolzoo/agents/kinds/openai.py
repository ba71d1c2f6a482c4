"""``kind: openai``: an OpenAI-compatible endpoint; every episode's agent shares one pooled client."""

from toolzoo.agents.registry import AgentKind, register_agent

_NOT_LLM = ("kind", "p", "seed", "path", "mode", "persona")


@register_agent("openai")
class OpenAIKind(AgentKind):
    def __init__(self, config) -> None:
        super().__init__(config)
        from toolzoo.llm import LLMClient, LLMConfig

        fields = {k: v for k, v in config.model_dump().items() if k not in _NOT_LLM and v is not None}
        self.client = LLMClient(LLMConfig(**fields))

    def make(self, episode_id: str = ""):
        from toolzoo.agents.openai import OpenAIAgent

        return OpenAIAgent(client=self.client)

    async def aclose(self) -> None:
        await self.client.aclose()
