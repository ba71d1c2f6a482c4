"""Executes tool calls against one state: schema validation, then effects, all or nothing.

An agent mistake (unknown tool, arguments that break the schema, a failed ``require``, a CEL
runtime error, an effect that would break a record schema) is a :class:`ToolResult` with
``is_error=True`` and the state untouched. Only bugs in toolzoo itself raise.
"""

from __future__ import annotations

import enum
import inspect
import json
from typing import Any, Awaitable, Callable

from toolzoo.core import ToolResult, ToolSpecView
from toolzoo.tools.cel import CelError
from toolzoo.tools.effects import RequirementFailed, ToolError, run_effects  # noqa: F401 (re-exported)
from toolzoo.tools.loader import CompiledTool, Domain
from toolzoo.tools.state import State, canonical_json
from toolzoo.tools.validation import argument_problem

# A simulated tool's executor: (tool spec, args, runtime) -> result (raise ToolError to fail).
Simulator = Callable[[Any, dict[str, Any], "DomainRuntime"], Awaitable[Any]]


class CallFailure(enum.Enum):
    """Why the last ``call_sync`` failed (``DomainRuntime.last_failure``)."""

    REQUIREMENT = "requirement"  # a require effect was false
    ERROR = "error"  # anything else: bad arguments, CEL runtime error, invalid write, impl exception


class DomainRuntime:
    def __init__(self, domain: Domain, state: State, simulator: Simulator | None = None):
        self.domain = domain
        self.state = state
        self.simulator = simulator
        self.last_failure: CallFailure | None = None  # set by every call_sync

    def tool_views(self) -> list[ToolSpecView]:
        views = self.domain.__dict__.get("_tool_views")  # made once per domain, shared by episodes
        if views is None:
            views = self.domain.__dict__["_tool_views"] = [
                ToolSpecView(name=t.spec.name, description=t.spec.description, parameters=t.spec.parameters)
                for t in self.domain.tools.values()
            ]
        return list(views)

    async def call(self, name: str, args: Any) -> ToolResult:
        tool = self.domain.tools.get(name)
        if tool is None:
            known = ", ".join(self.domain.tools)
            return _error(name, f"unknown tool {name!r} (available: {known})")
        if tool.spec.simulated:
            if self.simulator is None:
                return _error(name, f"tool {name!r} is simulated by an LLM and no simulator is configured")
            # The declared schema holds for a simulated tool too: arguments that break it are the
            # agent's error, answered as a real tool's would be, and never reach the model.
            args = _coerce_integers(tool, {} if args is None else args)
            if problem := _argument_problem(tool, args):
                return _error(name, problem)
            try:
                return _ok(name, await self.simulator(tool.spec, args, self))
            except ToolError as exc:
                return _error(name, f"{name}: {exc}")
        return self.call_sync(name, args)

    def call_sync(self, name: str, args: Any) -> ToolResult:
        """Execute a non-simulated tool. Synchronous: effects are CPU-only."""
        self.last_failure = CallFailure.ERROR  # until the call succeeds or a require refuses it
        tool = self.domain.tools.get(name)
        if tool is None:
            return _error(name, f"unknown tool {name!r} (available: {', '.join(self.domain.tools)})")
        if args is None:
            args = {}
        args = _coerce_integers(tool, args)
        problem = _argument_problem(tool, args)
        if problem:
            return _error(name, problem)
        before = self.state.snapshot() if tool.impl is not None else None
        undo: list[tuple[str, str, dict[str, Any] | None]] = []
        try:
            if tool.impl is not None:
                result = tool.impl(args, self.state)
                if inspect.isawaitable(result):
                    raise ToolError("async impl functions are not supported in call_sync")
                json.dumps(result, default=str)
            else:
                result = self._run_effects(tool, args, undo)
            self.last_failure = None
            return _ok(name, result)
        except (ToolError, CelError) as exc:
            self._rollback(undo, before)
            if isinstance(exc, RequirementFailed):
                self.last_failure = CallFailure.REQUIREMENT
            return _error(name, f"{name}: {exc}")
        except Exception as exc:  # an impl's own bug is still the tool's error, not a crash
            self._rollback(undo, before)
            return _error(name, f"{name}: internal error: {type(exc).__name__}: {exc}")

    def _rollback(self, undo: list, before: Any) -> None:
        if before is not None:
            self.state.restore(before)
            return
        for collection, key, old in reversed(undo):
            if old is None:
                self.state.delete(collection, key)
            else:
                self.state.put(collection, key, old)

    def _run_effects(self, tool: CompiledTool, args: dict[str, Any], undo: list) -> Any:
        return run_effects(self.state, self.domain.record_validators, tool.spec.name, tool.lets, tool.effects, args, undo)


def _coerce_integers(tool: CompiledTool, args: Any) -> Any:
    """JSON Schema's ``integer`` admits 50.0, but CEL will not add an int to a double: turn
    whole-number floats into ints where the tool's schema asks for an integer."""
    if not isinstance(args, dict):
        return args
    props = tool.spec.parameters.get("properties") or {}
    fixed = None
    for name, value in args.items():
        if isinstance(value, float) and value.is_integer() and (props.get(name) or {}).get("type") == "integer":
            fixed = fixed or dict(args)
            fixed[name] = int(value)
    return fixed or args


def _argument_problem(tool: CompiledTool, args: Any) -> str | None:
    return argument_problem(tool.spec.name, tool.validator, args)


def _ok(name: str, result: Any) -> ToolResult:
    return ToolResult(name=name, content=canonical_json(result), structured=result)


def _error(name: str, message: str) -> ToolResult:
    return ToolResult(name=name, content=message, is_error=True)
