"""``kind: hf``: a local transformers model (``path``, or ``model``: a registered name or a
path); one agent object serves every episode and batches their turns.

Two keys serve training rollouts (the trainer's Ray workers set them; a run may too):
``episode_seed: N`` gives every episode its own sampling generator, seeded from N, the policy
version and the episode id (``hf.SeededEpisode``: the same episodes on any process), and
``privileged: full_trace | tool_names | hint`` shows each episode's task PI to the policy
(the π-Distill teacher view, ``trainer.privileged.PrivilegedAgent``)."""

from toolzoo.agents.registry import AgentKind, register_agent

_OWN = ("episode_seed", "privileged")


@register_agent("hf")
class HFKind(AgentKind):
    def __init__(self, config) -> None:
        super().__init__(config)
        self._agent = None
        self.policy_version = 0  # set by whoever swaps the weights (the Ray rollout worker)

    def shared(self):
        """The one HFAgent behind every episode (built on first use)."""
        if self._agent is None:
            from toolzoo.agents.hf import HFAgent

            extra = {k: v for k, v in self.extra().items() if k not in _OWN}
            if not self.config.path and not extra.get("model"):
                raise ValueError("agent kind hf needs `path` (a local checkpoint) or `model` (a name)")
            self._agent = HFAgent(self.config.path, **extra)
        return self._agent

    def make(self, episode_id: str = ""):
        agent, extra = self.shared(), self.extra()
        if extra.get("episode_seed") is not None:
            from toolzoo.agents.hf import SeededEpisode, episode_seed

            agent = SeededEpisode(agent, episode_seed(int(extra["episode_seed"]), self.policy_version, episode_id))
        if extra.get("privileged"):
            from toolzoo.trainer.privileged import PrivilegedAgent

            agent = PrivilegedAgent(agent, extra["privileged"])
        return agent
