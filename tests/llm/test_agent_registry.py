"""The agent registry: built-in kinds by name, a third-party class named in the config."""

from __future__ import annotations

import asyncio

import pytest

from toolzoo.agents.registry import agent_kinds
from toolzoo.core import Message
from toolzoo.envs.factories import AgentFactory
from toolzoo.envs.run_config import AgentConfig


class EchoAgent:
    """A third-party agent: never registered, named in the config."""

    closed = 0

    def __init__(self, greeting: str = "hi") -> None:
        self.greeting = greeting

    async def start(self, task) -> None:
        return None

    async def act(self, messages, tools) -> Message:
        return Message(role="assistant", content=f"{self.greeting}: {messages[-1].content}")

    async def aclose(self) -> None:
        EchoAgent.closed += 1


class SharedAgent(EchoAgent):
    shared = True


def test_builtin_kinds():
    assert agent_kinds() == ["hf", "noisy_oracle", "openai", "oracle", "python", "random"]
    f = AgentFactory(AgentConfig(kind="noisy_oracle", p=0.5, seed=3))
    a, b = f.make("e1"), f.make("e2")
    assert type(a).__name__ == "NoisyOracleAgent" and a is not b and a.seed == "3:e1"
    with pytest.raises(ValueError, match="needs `path`"):
        AgentFactory(AgentConfig(kind="hf")).make("e")


def test_python_kind_builds_the_named_class():
    cfg = AgentConfig.model_validate({"kind": "python", "class": f"{__name__}:EchoAgent", "greeting": "yo"})
    f = AgentFactory(cfg)
    a, b = f.make("e1"), f.make("e2")
    assert isinstance(a, EchoAgent) and a is not b and a.greeting == "yo"
    reply = asyncio.run(a.act([Message(role="user", content="ping")], []))
    assert reply.content == "yo: ping"
    EchoAgent.closed = 0
    asyncio.run(f.aclose())
    assert EchoAgent.closed == 2
    s = AgentFactory(AgentConfig.model_validate({"kind": "python", "class": f"{__name__}:SharedAgent"}))
    assert s.make("a") is s.make("b")


@pytest.mark.parametrize("ref,msg", [(None, "needs `class"), ("nocolon", "expected"),
                                     ("no_such_module_x:A", "cannot import"), (f"{__name__}:Nope", "has no")])
def test_python_kind_errors(ref, msg):
    section = {"kind": "python"} | ({"class": ref} if ref else {})
    with pytest.raises(ValueError, match=msg):
        AgentFactory(AgentConfig.model_validate(section))
