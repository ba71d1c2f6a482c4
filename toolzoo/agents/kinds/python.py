"""``kind: python``: any agent class, ``class: "pkg.module:Class"``; the section's other keys
are its keyword arguments. One instance per episode, unless the class sets ``shared = True``
(then one for the run). An ``aclose`` coroutine on the instance is awaited at the end."""

from __future__ import annotations

import importlib

from toolzoo.agents.registry import AgentKind, register_agent


def import_class(ref: str):
    module, sep, name = ref.partition(":")
    if not sep or not module or not name:
        raise ValueError(f'agent class {ref!r}: expected "package.module:ClassName"')
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"agent class {ref!r}: cannot import {module!r}: {e}") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"agent class {ref!r}: {module!r} has no {name!r}")
        obj = getattr(obj, part)
    return obj


@register_agent("python")
class PythonKind(AgentKind):
    def __init__(self, config) -> None:
        super().__init__(config)
        kw = self.extra()
        ref = kw.pop("class", None)
        if not isinstance(ref, str):
            raise ValueError('agent kind python needs `class: "package.module:ClassName"`')
        self.cls, self.kwargs = import_class(ref), kw
        self._made: list = []
        self._shared = None

    def make(self, episode_id: str = ""):
        if getattr(self.cls, "shared", False):
            if self._shared is None:
                self._shared = self.cls(**self.kwargs)
                self._made.append(self._shared)
            return self._shared
        agent = self.cls(**self.kwargs)
        if hasattr(agent, "aclose"):
            self._made.append(agent)
        return agent

    async def aclose(self) -> None:
        for a in self._made:
            close = getattr(a, "aclose", None)
            if close is not None:
                await close()
        self._made = []
