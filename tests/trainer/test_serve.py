"""The local OpenAI-compatible server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from toolzoo.agents.hf import HFAgent
from toolzoo.trainer.serve import build_app

from .conftest import toy_conversations


@pytest.fixture(scope="module")
def server(sft_result):
    path, _ = sft_result
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    app = build_app(HFAgent(path, max_new_tokens=48), "tiny")
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    srv.should_exit = True
    th.join(timeout=10)


def test_models(server):
    r = httpx.get(f"{server}/models")
    assert r.status_code == 200 and r.json()["data"][0]["id"] == "tiny"


def test_tool_call_response(server):
    msgs, tools = toy_conversations(["o0042"])[0]
    body = {"model": "tiny", "messages": [msgs[0].to_openai()],
            "tools": [t.to_openai() for t in tools], "temperature": 0}
    r = httpx.post(f"{server}/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "refund_order"
    assert call["function"]["arguments"] == '{"order_id": "o0042"}'
    assert data["usage"]["prompt_tokens"] > 10
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]

    # the follow-up turn, with the tool result, ends the conversation in text
    follow = {**body, "messages": [m.to_openai() for m in msgs[:3]]}
    r2 = httpx.post(f"{server}/chat/completions", json=follow, timeout=30).json()
    assert r2["choices"][0]["finish_reason"] == "stop"
    assert r2["choices"][0]["message"]["content"] == "The order was refunded."


def test_max_tokens_seed_and_errors(server):
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "temperature": 1.5, "seed": 7}
    a = httpx.post(f"{server}/chat/completions", json=body, timeout=30).json()
    b = httpx.post(f"{server}/chat/completions", json=body, timeout=30).json()
    assert a["usage"]["completion_tokens"] <= 3
    assert a["choices"][0]["message"] == b["choices"][0]["message"]  # same seed, same sample
    if a["usage"]["completion_tokens"] == 3 and a["choices"][0]["finish_reason"] != "tool_calls":
        assert a["choices"][0]["finish_reason"] in ("length", "stop")
    bad = httpx.post(f"{server}/chat/completions", json={"messages": "nope"}, timeout=30)
    assert bad.status_code == 400
