"""``kind: oracle``: follows the task's reference trace."""

from toolzoo.agents.registry import AgentKind, register_agent


@register_agent("oracle")
class OracleKind(AgentKind):
    def make(self, episode_id: str = ""):
        from toolzoo.agents.scripted import OracleAgent

        return OracleAgent()
