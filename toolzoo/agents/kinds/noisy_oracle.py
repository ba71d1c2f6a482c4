"""``kind: noisy_oracle``: the oracle failing each subtask with probability ``p``."""

from toolzoo.agents.registry import AgentKind, register_agent


@register_agent("noisy_oracle")
class NoisyOracleKind(AgentKind):
    def make(self, episode_id: str = ""):
        from toolzoo.agents.scripted import NoisyOracleAgent

        # the episode id in the seed: trials of one task fail independently
        return NoisyOracleAgent(self.config.p, seed=f"{self.config.seed}:{episode_id}")
