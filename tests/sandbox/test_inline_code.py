"""Inline runs no code: a domain with ``impl:`` tools is refused unless ``allow_unisolated``
(and then ``isolation`` says so); ``impl:`` tools run off the event loop over both inline
transports, so a 3 s ``run_python`` does not hold up a concurrent episode's calls."""

from __future__ import annotations

import asyncio
import time

import pytest

from toolzoo.sandbox.base import SandboxSpec, create_sandbox
from toolzoo.sandbox.inline import InlineUnisolated


def test_inline_refuses_code_tools_and_says_what_to_use():
    with pytest.raises(InlineUnisolated) as err:
        asyncio.run(create_sandbox(SandboxSpec(backend="inline", domain="code_workspace")))
    msg = str(err.value)
    assert "run_python" in msg and "run_shell" in msg and "unisolated" in msg
    assert "backend: process" in msg and "docker" in msg and "allow_unisolated: true" in msg


@pytest.mark.parametrize("transport", ["direct", "mcp"])
def test_allowed_unisolated_is_recorded_and_impl_calls_leave_the_loop_free(transport):
    async def main():
        slow_box = await create_sandbox(SandboxSpec(backend="inline", domain="code_workspace", transport=transport,
                                                    allow_unisolated=True))
        other = await create_sandbox(SandboxSpec(backend="inline", domain="bank_accounts", transport=transport))
        try:
            assert "unisolated" in slow_box.isolation and "allowed by config" in slow_box.isolation
            assert other.isolation == "none (in-process)"
            t0 = time.monotonic()
            slow = asyncio.create_task(slow_box.session.call_tool(
                "run_python", {"code": "import time; time.sleep(3); print('slept')", "timeout_s": 20}))
            await asyncio.sleep(0.2)  # the slow call is running in its worker thread now
            for _ in range(20):  # the concurrent episode's calls
                await other.session.state_hash()
                await other.session.list_tools()
            others_done = time.monotonic() - t0
            assert not slow.done(), "the concurrent episode's calls finished while run_python still ran"
            result = await slow
            assert not result.is_error and "slept" in result.content
            assert time.monotonic() - t0 >= 3.0 > others_done
        finally:
            await slow_box.close()
            await other.close()

    asyncio.run(main())
