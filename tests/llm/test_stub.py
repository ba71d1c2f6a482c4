"""The stub server itself: lifecycle (no process left behind), rules, script swaps, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from toolzoo.testing import OpenAIStub


def _post(stub: OpenAIStub, content: str, path: str = "/v1/chat/completions") -> httpx.Response:
    return httpx.post(stub.url + path, json={"model": "m", "messages": [
        {"role": "system", "content": "sys"}, {"role": "user", "content": content}]}, timeout=5)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not yet reaped by whoever adopted it) still answers kill(0).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_stop_leaves_no_process_and_frees_the_port() -> None:
    with OpenAIStub([{"content": "hi"}]) as stub:
        pid = stub.proc.pid
        assert _post(stub, "x").json()["choices"][0]["message"]["content"] == "hi"
        url = stub.url
    assert _gone(pid)
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/_health", timeout=1)


def test_async_context_manager() -> None:
    async def go() -> tuple[int, int]:
        async with OpenAIStub([{"content": "hi"}]) as stub:
            async with httpx.AsyncClient() as c:
                r = await c.post(stub.base_url + "/chat/completions",
                                 json={"model": "m", "messages": []})
            return r.status_code, stub.proc.pid

    status, pid = asyncio.run(go())
    assert status == 200 and _gone(pid)


def test_server_exits_when_its_parent_dies(tmp_path) -> None:
    # A parent that starts a stub and is SIGKILLed: the stub must notice (stdin EOF) and exit.
    code = ("import time; from toolzoo.testing import OpenAIStub\n"
            "s = OpenAIStub().start(); print(s.proc.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while not _gone(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child_pid)


def test_rules_steps_default_and_exhaustion(stub: OpenAIStub) -> None:
    stub.load({"rules": [{"match": r"weather in (?P<city>\w+)",
                          "reply": {"content": r"sunny in \g<city>", "expand": True}},
                         {"match": "^sys$", "field": "system", "reply": {"content": "sys rule"}}],
               "steps": [{"content": "first"}]})
    assert _post(stub, "weather in Oslo?").json()["choices"][0]["message"]["content"] \
        == "sunny in Oslo"
    # The system rule matches every other request: steps are never reached.
    assert _post(stub, "anything").json()["choices"][0]["message"]["content"] == "sys rule"
    stub.load({"steps": [{"content": "first"}], "default": {"status": 500}})
    assert _post(stub, "a", path="/chat/completions").status_code == 200
    assert _post(stub, "b").status_code == 500
    stub.load([{"content": "only"}])
    _post(stub, "a")
    assert _post(stub, "b").status_code == 418  # over-run scripts fail loudly, not retryably
    assert [r["served_by"] for r in stub.requests()] == ["step:0", "exhausted"]


def test_tool_calls_and_usage_shape(stub: OpenAIStub) -> None:
    stub.load([{"tool_calls": [{"name": "f", "arguments": "{bad"}, {"name": "g",
                                                                      "arguments": {"a": 1}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2}}])
    data = _post(stub, "x").json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [c["function"]["arguments"] for c in choice["message"]["tool_calls"]] == \
        ["{bad", json.dumps({"a": 1})]
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_bad_script_rejected_and_log_cleared(stub: OpenAIStub) -> None:
    stub.load([{"content": "x"}])
    _post(stub, "a")
    r = httpx.put(stub.url + "/_script", content=json.dumps({"steps": [{"bogus": 1}]}))
    assert r.status_code == 422
    assert len(stub.requests()) == 1
    stub.clear()
    assert stub.requests() == []


def test_cli_with_script_file(tmp_path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"content": "from file"}]))
    proc = subprocess.Popen([sys.executable, "-m", "toolzoo.testing.openai_stub", "--port", "0",
                             "--script", str(script)], stdout=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline().split()[1])
        for _ in range(200):
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                               json={"model": "m", "messages": []}, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.02)
        assert r.json()["choices"][0]["message"]["content"] == "from file"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()
