"""Agent kinds by name: ``agent: {kind: NAME, ...}`` in a run config.

A kind is a class registered with ``@register_agent("name")``; it is built once per run from
the config section (``__init__(config)``), makes one agent per episode (``make(episode_id)``:
scripted agents draw their randomness from it; model-backed kinds may return one shared
object that batches its episodes) and releases what it holds in ``aclose()``. Built-in kinds
live one per file in ``toolzoo/agents/kinds/``; a third-party agent needs no registration:
``agent: {kind: python, class: "pkg.module:Class", ...}`` (``kinds/python.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

_KINDS: dict[str, type] = {}
_BUILTIN_MODULES = ("hf", "noisy_oracle", "openai", "oracle", "python", "random")


class AgentKind:
    """Base class of a registered kind (holds the config section)."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def extra(self) -> dict[str, Any]:
        """The section's keys beyond AgentConfig's own fields."""
        return dict(self.config.model_extra or {})

    def make(self, episode_id: str = "") -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def register_agent(name: str):
    def deco(cls: type) -> type:
        if name in _KINDS and _KINDS[name] is not cls:
            raise ValueError(f"agent kind {name!r} is already registered")
        _KINDS[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    for m in _BUILTIN_MODULES:
        importlib.import_module(f"toolzoo.agents.kinds.{m}")


def agent_kinds() -> list[str]:
    _load_builtins()
    return sorted(_KINDS)


def build_kind(config: Any) -> AgentKind:
    """The registered kind named by ``config.kind``, built from the section."""
    _load_builtins()
    cls = _KINDS.get(config.kind)
    if cls is None:
        raise ValueError(f"unknown agent kind {config.kind!r}; known: {', '.join(sorted(_KINDS))}")
    return cls(config)
