"""Test helpers shipped with the package (a scriptable OpenAI-compatible stub server).

Names are loaded lazily so that ``python -m toolzoo.testing.openai_stub`` does not import the
module twice."""

from __future__ import annotations

from typing import Any

__all__ = ["OpenAIStub", "StubRule", "StubScript", "StubStep", "StubToolCall", "stub_fixture"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from toolzoo.testing import openai_stub

        return getattr(openai_stub, name)
    raise AttributeError(name)
