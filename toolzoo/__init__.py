"""toolzoo: an agentic-RL environment and sandbox harness."""

__version__ = "0.1.0"


def _register_envs() -> None:
    # Importing toolzoo registers the gymnasium env; gymnasium imports lazily via the entry point.
    try:
        from gymnasium.envs.registration import register, registry
    except ImportError:  # pragma: no cover - gymnasium is a base dependency
        return
    if "toolzoo/ToolUse-v0" not in registry:
        register(id="toolzoo/ToolUse-v0", entry_point="toolzoo.envs.gym_env:ToolUseEnv")


_register_envs()
