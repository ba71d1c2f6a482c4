"""LLM-simulated tools (``simulate: llm``): a world model that answers tool calls.

One :class:`LLMSimulator` serves one episode (the tool server is per episode, and the server
holds the simulator), so its JSON *world state*, its call history and its read cache live
exactly as long as the episode. For each call the model sees the tool's name, description and
parameter schema, the arguments, the current world state and the recent call history, and
returns ``{"result": ..., "state_update": {...}, "error": null | "..."}`` as structured output.

Consistency rules (enforced here, not left to the model):

* **Mutations.** A call is a *read* when the tool declares ``read_only: true`` (MCP's
  readOnlyHint; ``false`` makes it a mutation); undeclared, when its name starts with a read
  verb (get, list, search, find, lookup, read, check, show, query, describe, count, fetch, view)
  or its description says ``read-only``; otherwise it is a *mutation*. A read whose reply
  nevertheless carries a non-empty ``state_update`` is promoted to a mutation.
* **Read cache.** The result of a read is cached under (tool, canonical arguments); the same
  read again returns the cached result without asking the model, until a mutation happens
  (every mutation clears the cache). So the same query twice gives the same answer unless
  something changed in between.
* **State updates** are deep-merged into the world state (a ``null`` value deletes a key).
* **Failures.** With probability ``failure_rate`` (from a ``random.Random(seed)``, drawn once
  per call before anything else, so a seed fixes which calls fail) the call fails with a
  transient tool error and changes nothing: controlled stochasticity, as in Kimi K2. A reply
  that is not valid structured output or a model-declared ``error`` also becomes a tool error
  the agent sees; the episode never crashes on the model's output.
* **Endpoint down.** When the world model's endpoint cannot be reached (after the client's
  retries) the call raises :class:`~toolzoo.core.InfraError`: the episode is ``infra``, not
  an agent-visible tool error. Time spent waiting for the endpoint is harness time
  (:mod:`toolzoo.clock`), so it never runs down the agent's time limit.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from toolzoo.clock import harness_section
from toolzoo.core import InfraError, Message
from toolzoo.llm import LLMClient, LLMConfig, LLMError, LLMRequestError, LLMUnavailable
from toolzoo.tools.runtime import DomainRuntime, Simulator, ToolError
from toolzoo.tools.state import canonical_json

READ_VERBS = ("get", "list", "search", "find", "lookup", "read", "check", "show", "query", "describe", "count",
              "fetch", "view")
_READ_ONLY = re.compile(r"\bread[- ]only\b", re.I)

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "result": {},
        "state_update": {"type": "object"},
        "error": {"type": ["string", "null"]},
    },
    "required": ["result", "state_update"],
}

SYSTEM = (
    "You are the world model behind a set of tools in the {domain} domain ({description}). You do not "
    "talk to anyone: for each tool call you decide what the tool returns and how the world changes. "
    "Stay consistent with the world state and with every earlier result: ids, names and numbers "
    "that were returned before must not change unless a call changed them. Results must fit the "
    "tool's description and look like what a real service would return (JSON values). If the call "
    "cannot succeed (unknown id, invalid request), set \"error\" to a short message and leave "
    "\"state_update\" empty. Put every change the call makes to the world into \"state_update\" "
    "(a JSON object deep-merged into the state; null deletes a key); reads change nothing."
)


class SimulatorConfig(BaseModel):
    """The run YAML's ``simulator:`` section: where the world model lives and how it fails.

    Every LLMConfig field (base_url, model, api_key_env, timeout_s, temperature, ...) is
    accepted; ``failure_rate``, ``seed`` and ``history`` configure the simulator itself."""

    model_config = ConfigDict(extra="allow")
    model: str
    failure_rate: float = Field(0.0, ge=0.0, le=1.0)
    seed: int = 0
    history: int = Field(20, ge=0, description="earlier calls shown to the model")

    def llm_config(self) -> LLMConfig:
        fields = {k: v for k, v in self.model_dump().items() if k not in ("failure_rate", "seed", "history")}
        fields.setdefault("temperature", 0.0)
        return LLMConfig(**fields)


def is_read(tool: Any) -> bool:
    if getattr(tool, "read_only", None) is not None:  # declared (``read_only``, MCP's readOnlyHint)
        return tool.read_only
    name = tool.name.lower()
    return any(name == v or name.startswith(v + "_") for v in READ_VERBS) or bool(_READ_ONLY.search(tool.description or ""))


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class CallRecord(BaseModel):
    tool: str
    args: Any
    result: Any = None
    error: str | None = None
    mutation: bool = False


class LLMSimulator:
    """A per-episode world model; pass it as ``DomainServer(simulator=...)``."""

    def __init__(self, llm: LLMConfig | LLMClient, failure_rate: float = 0.0, seed: int | str = 0, *,
                 world: dict[str, Any] | None = None, history: int = 20):
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be in [0, 1]")
        self.client = llm if isinstance(llm, LLMClient) else LLMClient(llm)
        self._owns_client = not isinstance(llm, LLMClient)
        self.failure_rate = failure_rate
        self.rng = random.Random(f"simulator:{seed}")
        self.world: dict[str, Any] = dict(world or {})
        self.history: list[CallRecord] = []
        self.max_history = history
        self.cache: dict[tuple[str, str], Any] = {}
        self.stats = {"calls": 0, "model_calls": 0, "cache_hits": 0, "injected_failures": 0, "bad_outputs": 0,
                      "endpoint_failures": 0}

    async def __call__(self, tool: Any, args: dict[str, Any], runtime: DomainRuntime) -> Any:
        self.stats["calls"] += 1
        if self.failure_rate and self.rng.random() < self.failure_rate:
            self.stats["injected_failures"] += 1
            raise ToolError("temporarily unavailable (simulated transient failure); try again")
        read = is_read(tool)
        key = (tool.name, canonical_json(args))
        if read and key in self.cache:
            self.stats["cache_hits"] += 1
            return self.cache[key]
        reply = await self._ask(tool, args, runtime)
        update = reply.get("state_update") or {}
        error = reply.get("error")
        if error:
            self.history.append(CallRecord(tool=tool.name, args=args, error=str(error)))
            raise ToolError(str(error))
        mutation = not read or bool(update)
        if mutation:
            self.cache.clear()
            self.world = deep_merge(self.world, update)
        result = reply.get("result")
        if read and not update:
            self.cache[key] = result
        self.history.append(CallRecord(tool=tool.name, args=args, result=result, mutation=mutation))
        return result

    async def _ask(self, tool: Any, args: dict[str, Any], runtime: DomainRuntime) -> dict[str, Any]:
        spec = runtime.domain.spec
        recent = self.history[-self.max_history:] if self.max_history else []
        prompt = {
            "tool": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
            "arguments": args,
            "world_state": self.world,
            "earlier_calls": [r.model_dump(exclude_none=True) for r in recent],
        }
        messages = [
            Message(role="system", content=SYSTEM.format(domain=spec.domain, description=spec.description or "no description")),
            Message(role="user", content="Simulate this tool call.\n" + json.dumps(prompt, indent=1, default=str)),
        ]
        self.stats["model_calls"] += 1
        try:
            with harness_section("simulator"):
                reply = await self.client.structured(messages, RESPONSE_SCHEMA, "tool_simulation")
        except (LLMUnavailable, LLMRequestError) as exc:  # the service itself is down or refuses: infra
            self.stats["endpoint_failures"] += 1
            raise InfraError(f"simulated tool {tool.name}: world model endpoint failed "
                             f"({type(exc).__name__}: {str(exc)[:200]})") from None
        except LLMError as exc:
            self.stats["bad_outputs"] += 1
            raise ToolError(f"the simulated service failed ({type(exc).__name__}: {str(exc)[:200]})") from None
        try:
            json.dumps(reply.get("result"))
        except (TypeError, ValueError):
            self.stats["bad_outputs"] += 1
            raise ToolError("the simulated service returned a result that is not JSON") from None
        return reply

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()


class SimulatorFactory:
    """One simulator per episode from a run's ``simulator:`` section, sharing one client."""

    def __init__(self, section: SimulatorConfig | dict[str, Any]):
        self.config = section if isinstance(section, SimulatorConfig) else SimulatorConfig.model_validate(section)
        self.client = LLMClient(self.config.llm_config())

    def make(self, episode_id: str = "") -> LLMSimulator:
        return LLMSimulator(self.client, self.config.failure_rate, seed=f"{self.config.seed}:{episode_id}",
                            history=self.config.history)

    async def aclose(self) -> None:
        await self.client.aclose()


def make_simulator(section: SimulatorConfig | dict[str, Any], episode_id: str = "",
                   client: LLMClient | None = None) -> Simulator:
    """A fresh simulator for one episode (its failure draws are seeded by ``seed`` and the
    episode id). Pass ``client`` to share one connection pool across episodes."""
    config = section if isinstance(section, SimulatorConfig) else SimulatorConfig.model_validate(section)
    llm: LLMConfig | LLMClient = client if client is not None else config.llm_config()
    return LLMSimulator(llm, config.failure_rate, seed=f"{config.seed}:{episode_id}", history=config.history)
