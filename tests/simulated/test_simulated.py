"""LLM-simulated tools against a real local OpenAI-compatible HTTP server (the stub process).

The stub's rules answer by what the request contains, so the tests can tell a cached answer
(no request) from a fresh one (a request, possibly a different answer)."""

from __future__ import annotations

import asyncio
import json

import pytest
from scipy.stats import binom

from toolzoo.core import InfraError
from toolzoo.llm import LLMConfig
from toolzoo.testing import OpenAIStub
from toolzoo.tools.loader import load_domain_text
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.server import DomainServer
from toolzoo.tools.session import DirectSession, MCPSession
from toolzoo.tools.simulated import LLMSimulator, SimulatorFactory, deep_merge, is_read, make_simulator
from toolzoo.tools.state import seed_state

DOMAIN = """
domain: weather_sim
category: science
description: A weather service with stations whose readings an LLM simulates.
tools:
  - name: get_reading
    description: The latest temperature reading of a station.
    parameters: {type: object, properties: {station: {type: string}}, required: [station]}
    simulate: llm
  - name: calibrate_station
    description: Recalibrate a station; its readings change afterwards.
    parameters: {type: object, properties: {station: {type: string}}, required: [station]}
    simulate: llm
"""


@pytest.fixture(scope="module")
def stub():
    with OpenAIStub() as s:
        yield s


def reply(result, update=None, error=None) -> dict:
    return {"content": json.dumps({"result": result, "state_update": update or {}, "error": error})}


def config(stub: OpenAIStub) -> LLMConfig:
    return LLMConfig(model="stub", base_url=stub.base_url, api_key="sk-test", timeout_s=5, max_retries=0,
                     bad_response_retries=0, structured_retries=1, backoff_base_s=0.01)


def test_read_verbs_and_merge() -> None:
    class T:
        def __init__(self, name: str, description: str = "") -> None:
            self.name, self.description = name, description

    assert is_read(T("get_reading")) and is_read(T("list_things")) and is_read(T("x", "A read-only view."))
    assert not is_read(T("calibrate_station")) and not is_read(T("getaway_book"))
    declared = T("ping_station")
    declared.read_only = True  # a declaration beats the name: no read verb, still a read
    assert is_read(declared)
    declared = T("get_and_reset_counter")
    declared.read_only = False  # a read verb, declared to mutate
    assert not is_read(declared)
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}, "e": 4}) == {"a": {"c": 2, "d": 3}, "e": 4}


def test_same_query_same_result_unless_mutation(stub: OpenAIStub) -> None:
    # Each model answer differs (steps), so only the cache can make two reads agree.
    stub.load({"steps": [reply({"temp": 11}), reply({"ok": True}, {"stations": {"s1": {"offset": 2}}}),
                         reply({"temp": 13}), reply({"temp": 99})]})
    domain = load_domain_text(DOMAIN)

    async def main() -> list:
        sim = LLMSimulator(config(stub))
        server = DomainServer(domain, simulator=sim)
        session = MCPSession(server.server)  # through real MCP framing
        await session.open()
        try:
            out = []
            for name in ["get_reading", "get_reading", "calibrate_station", "get_reading", "get_reading"]:
                r = await session.call_tool(name, {"station": "s1"})
                assert not r.is_error, r.content
                out.append(r.structured)
            other = await session.call_tool("get_reading", {"station": "s2"})  # a different query: asks
            out.append(other.structured)
            return out + [sim.world, sim.stats]
        finally:
            await session.close()
            await sim.aclose()

    r1, r2, cal, r3, r4, r5, world, stats = asyncio.run(main())
    assert r1 == r2 == {"temp": 11}  # same read twice: same result (cached, one request)
    assert cal == {"ok": True}
    assert r3 == r4 == {"temp": 13}  # the mutation invalidated the cache: a fresh answer, then cached
    assert r5 == {"temp": 99}
    assert world == {"stations": {"s1": {"offset": 2}}}
    assert stats["model_calls"] == 4 and stats["cache_hits"] == 2
    bodies = stub.bodies()
    assert len(bodies) == 4
    # The prompt carries the schema, the history and the current world state.
    last = bodies[2]["messages"][-1]["content"]
    assert '"station"' in last and "calibrate_station" in last and '"offset": 2' in last
    assert bodies[0]["response_format"]["type"] == "json_schema"


def test_failure_injection_rate_within_binomial_ci(stub: OpenAIStub) -> None:
    stub.load({"default": reply({"temp": 7})})
    domain = load_domain_text(DOMAIN)
    n, rate = 400, 0.2

    async def main(seed: int) -> tuple[int, list[bool]]:
        sim = LLMSimulator(config(stub), failure_rate=rate, seed=seed)
        session = DirectSession(DomainServer(domain, simulator=sim).runtime)
        errors = []
        for _ in range(n):
            r = await session.call_tool("get_reading", {"station": "s1"})
            errors.append(r.is_error)
            if r.is_error:
                assert "transient" in r.content
        await sim.aclose()
        return sum(errors), errors

    failures, pattern = asyncio.run(main(3))
    lo, hi = binom.interval(0.999, n, rate)
    assert lo <= failures <= hi, failures
    assert asyncio.run(main(3))[1] == pattern  # seeded: the same calls fail again
    assert asyncio.run(main(4))[1] != pattern


@pytest.mark.parametrize("content", ["not json at all", json.dumps({"result": 1}), "[1, 2]"])
def test_malformed_output_is_a_tool_error(stub: OpenAIStub, content: str) -> None:
    stub.load({"default": {"content": content}})
    domain = load_domain_text(DOMAIN)

    async def main():
        sim = LLMSimulator(config(stub))
        session = DirectSession(DomainServer(domain, simulator=sim).runtime)
        r = await session.call_tool("calibrate_station", {"station": "s1"})
        await sim.aclose()
        return r, sim

    r, sim = asyncio.run(main())
    assert r.is_error and "simulated service failed" in r.content
    assert sim.world == {} and sim.stats["bad_outputs"] == 1


def test_model_declared_error_and_endpoint_down(stub: OpenAIStub) -> None:
    stub.load({"default": reply(None, error="no station s9")})
    domain = load_domain_text(DOMAIN)

    async def main(cfg: LLMConfig):
        sim = make_simulator({"model": "stub", "base_url": cfg.base_url, "max_retries": 0, "timeout_s": 2})
        session = DirectSession(DomainServer(domain, simulator=sim).runtime)
        r = await session.call_tool("get_reading", {"station": "s9"})
        await sim.aclose()
        return r

    r = asyncio.run(main(config(stub)))
    assert r.is_error and "no station s9" in r.content
    # An unreachable world model is the harness's failure (infra), never a tool error the agent sees.
    down = LLMConfig(model="stub", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout_s=1)
    with pytest.raises(InfraError, match="LLMUnavailable"):
        asyncio.run(main(down))


def test_factory_seeds_per_episode(stub: OpenAIStub) -> None:
    factory = SimulatorFactory({"model": "stub", "base_url": stub.base_url, "failure_rate": 0.5, "seed": 1})
    a, b, a2 = factory.make("ep-a"), factory.make("ep-b"), factory.make("ep-a")
    draws = [[s.rng.random() for _ in range(5)] for s in (a, b, a2)]
    assert draws[0] == draws[2] != draws[1]
    assert a.client is b.client and a.failure_rate == 0.5
    asyncio.run(factory.aclose())


def test_inline_sandbox_passes_the_simulator(stub: OpenAIStub, tmp_path) -> None:
    from toolzoo.sandbox.base import SandboxSpec, create_sandbox

    stub.load({"default": reply({"temp": 21})})
    path = tmp_path / "weather_sim.yaml"
    path.write_text(DOMAIN)
    factory = SimulatorFactory({"model": "stub", "base_url": stub.base_url, "max_retries": 0})

    async def main():
        sandbox = await create_sandbox(SandboxSpec(domain=str(path), options={"simulator": factory.make("ep1")}))
        try:
            return await sandbox.session.call_tool("get_reading", {"station": "s1"})
        finally:
            await sandbox.close()
            await factory.aclose()

    r = asyncio.run(main())
    assert not r.is_error and r.structured == {"temp": 21}


def test_arguments_that_break_the_schema_are_tool_errors_before_the_model(stub: OpenAIStub) -> None:
    stub.load({"default": reply({"temp": 7})})
    domain = load_domain_text(DOMAIN)

    async def main() -> tuple:
        sim = LLMSimulator(config(stub))
        session = DirectSession(DomainRuntime(domain, seed_state(domain.spec, 0), simulator=sim))
        try:
            missing = await session.call_tool("get_reading", {})
            wrong_type = await session.call_tool("get_reading", {"station": 5})
            nan = await session.call_tool("get_reading", {"station": "s1", "extra": float("nan")})
            fine = await session.call_tool("get_reading", {"station": "s1"})
            return missing, wrong_type, nan, fine, dict(sim.stats)
        finally:
            await sim.aclose()

    before = len(stub.bodies())
    missing, wrong_type, nan, fine, stats = asyncio.run(main())
    assert missing.is_error and missing.content == "get_reading: invalid arguments: 'station' is a required property"
    assert wrong_type.is_error and "argument 'station': 5 is not of type 'string'" in wrong_type.content
    assert nan.is_error and "argument 'extra': NaN and Infinity are not JSON numbers" in nan.content
    assert not fine.is_error and fine.structured == {"temp": 7}
    assert stats["calls"] == 1 and stats["model_calls"] == 1  # only the valid call reached the simulator
    assert len(stub.bodies()) == before + 1
