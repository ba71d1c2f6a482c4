"""``kind: random``: random tools with ids seen in the conversation."""

from toolzoo.agents.registry import AgentKind, register_agent


@register_agent("random")
class RandomKind(AgentKind):
    def make(self, episode_id: str = ""):
        from toolzoo.agents.scripted import RandomAgent

        return RandomAgent(seed=f"{self.config.seed}:{episode_id}")
