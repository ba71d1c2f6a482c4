"""``kind: hf``: a local transformers model (``path``, or ``model``: a registered name or a
path); one agent object serves every episode and batches their turns."""

from toolzoo.agents.registry import AgentKind, register_agent


@register_agent("hf")
class HFKind(AgentKind):
    def __init__(self, config) -> None:
        super().__init__(config)
        self._agent = None

    def make(self, episode_id: str = ""):
        if self._agent is None:
            from toolzoo.agents.hf import HFAgent

            extra = self.extra()
            if not self.config.path and not extra.get("model"):
                raise ValueError("agent kind hf needs `path` (a local checkpoint) or `model` (a name)")
            self._agent = HFAgent(self.config.path, **extra)
        return self._agent
