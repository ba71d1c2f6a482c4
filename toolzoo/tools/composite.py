"""CompositeSession: one ToolSession over several domains' sessions, offering a subset of tools.

Tool-subset sampling (Kimi K2 style) gives an episode the tools its task needs plus
distractors drawn from its own domain and from other domains. The episode still talks to one
:class:`~toolzoo.tools.session.ToolSession`; this one routes each call by tool name to the
session that owns the tool. State operations (snapshot, restore, state_hash) go to the
*primary* session (the task's domain): the judge checks the task's domain state only, and
distractor domains are scratch space. A name offered by two sessions belongs to the first
(the primary comes first), so a distractor can never shadow a task tool.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable

from toolzoo.core import ToolResult, ToolSpecView
from toolzoo.tools.session import ToolSession


class CompositeSession:
    def __init__(self, primary: ToolSession, others: Iterable[ToolSession] = (), offered: Iterable[str] | None = None):
        self.primary = primary
        self.sessions: list[ToolSession] = [primary, *others]
        self.offered = list(offered) if offered is not None else None
        self._routes: dict[str, ToolSession] | None = None
        self._views: list[ToolSpecView] = []

    async def _route_table(self) -> dict[str, ToolSession]:
        if self._routes is None:
            routes: dict[str, ToolSession] = {}
            views: dict[str, ToolSpecView] = {}
            for session in self.sessions:
                for view in await session.list_tools():
                    if view.name not in routes:
                        routes[view.name], views[view.name] = session, view
            if self.offered is not None:
                missing = [n for n in self.offered if n not in routes]
                if missing:
                    raise ValueError(f"offered tools that no session has: {', '.join(missing)}")
                order = self.offered
            else:
                order = list(views)
            self._routes = {n: routes[n] for n in order}
            self._views = [views[n] for n in order]
        return self._routes

    async def list_tools(self) -> list[ToolSpecView]:
        await self._route_table()
        return list(self._views)

    async def call_tool(self, name: str, args: Any, call_id: str = "") -> ToolResult:
        session = (await self._route_table()).get(name)
        if session is None:
            known = ", ".join(self._routes or {})
            return ToolResult(call_id=call_id, name=name, is_error=True, content=f"unknown tool {name!r} (available: {known})")
        return await session.call_tool(name, args, call_id)

    async def snapshot(self) -> dict[str, Any]:
        return await self.primary.snapshot()

    async def records(self, touched: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
        read = getattr(self.primary, "records", None)
        if read is not None:
            return await read(touched)
        state = await self.primary.snapshot()
        return {c: {k: state.get(c, {}).get(k) for k in keys} for c, keys in touched.items()}

    async def restore(self, state: dict[str, Any]) -> str:
        return await self.primary.restore(state)

    async def state_hash(self) -> str:
        return await self.primary.state_hash()

    async def close(self) -> None:
        for session in self.sessions:
            with contextlib.suppress(Exception):
                await session.close()
