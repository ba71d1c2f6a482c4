"""A scriptable OpenAI-compatible chat-completions server for tests.

It runs as a real server process (``python -m toolzoo.testing.openai_stub --script FILE``),
bound to 127.0.0.1 on a free port, so tests exercise real HTTP: status codes, Retry-After,
slow answers, broken bodies. The script says what each request gets:

* ``steps`` — served in order, one per request (a canned reply, an HTTP error, a delay, a
  broken body); after the last one, ``default`` (or, without a default, HTTP 418 so that a test
  that sends more requests than it scripted fails loudly instead of retrying).
* ``rules`` — checked before the steps: the first rule whose regex matches the request (the
  last message's content by default) answers. Rules are stateless, so concurrent tests stay
  deterministic whatever order their requests arrive in.

Every request is recorded (body, arrival time, which step or rule answered): ``GET /_requests``.
``PUT /_script`` replaces the script and clears the log, so one process can serve many tests.

Python side: :class:`OpenAIStub` starts and stops the process (context manager, sync or async)
and :func:`stub_fixture` makes a pytest fixture of it.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

# --------------------------------------------------------------------------- the script format


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StubToolCall(_Model):
    name: str
    arguments: str | dict[str, Any] | list[Any] = "{}"  # a string is sent verbatim (may be bad JSON)
    id: str | None = None


class StubStep(_Model):
    """What one request gets. With none of ``status``/``raw``/``json_body`` set, a normal
    completion with ``content`` and ``tool_calls`` is returned."""

    content: str | None = None
    tool_calls: list[StubToolCall] | None = None
    finish_reason: str | None = None  # default: "tool_calls" when there are calls, else "stop"
    usage: dict[str, int] | None = None  # default: a deterministic estimate from the text sizes
    delay_s: float = 0.0  # sleep before answering (to force client timeouts)
    status: int | None = None  # answer with this HTTP status and ``body``
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. {"Retry-After": "1"}
    body: str | dict[str, Any] | None = None  # body for ``status`` (default: an OpenAI error)
    raw: str | None = None  # 200 with this exact text as the body (malformed JSON)
    json_body: Any = None  # 200 with this JSON as the body (e.g. no "choices")
    expand: bool = False  # rules only: content and string tool arguments are re templates of the match


class StubRule(_Model):
    match: str  # a Python regex, searched (re.S)
    field: Literal["last", "system", "all"] = "last"  # last message / system message / all text
    reply: StubStep


class StubScript(_Model):
    steps: list[StubStep] = Field(default_factory=list)
    rules: list[StubRule] = Field(default_factory=list)
    default: StubStep | None = None

    @classmethod
    def of(cls, script: StubScript | dict[str, Any] | list[Any] | None) -> StubScript:
        """Accept a StubScript, its dict form, or a bare list of steps."""
        if script is None:
            return cls()
        if isinstance(script, StubScript):
            return script
        if isinstance(script, list):
            return cls(steps=[StubStep.model_validate(s) for s in script])
        return cls.model_validate(script)


# --------------------------------------------------------------------------- the server


def _text(msg: Any) -> str:
    if not isinstance(msg, dict):
        return ""
    content = msg.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


class _State:
    def __init__(self, script: StubScript) -> None:
        self.script = script
        self.next_step = 0
        self.log: list[dict[str, Any]] = []
        self.served = 0

    def load(self, script: StubScript) -> None:
        self.script, self.next_step, self.log, self.served = script, 0, [], 0

    def choose(self, body: Any) -> tuple[StubStep | None, str, re.Match[str] | None]:
        messages = body.get("messages") if isinstance(body, dict) else None
        messages = messages if isinstance(messages, list) else []
        for i, rule in enumerate(self.script.rules):
            if rule.field == "last":
                text = _text(messages[-1]) if messages else ""
            elif rule.field == "system":
                text = "\n".join(_text(m) for m in messages
                                 if isinstance(m, dict) and m.get("role") == "system")
            else:
                text = "\n".join(_text(m) for m in messages)
            if (m := re.search(rule.match, text, re.S)) is not None:
                return rule.reply, f"rule:{i}", m
        if self.next_step < len(self.script.steps):
            self.next_step += 1
            return self.script.steps[self.next_step - 1], f"step:{self.next_step - 1}", None
        if self.script.default is not None:
            return self.script.default, "default", None
        return None, "exhausted", None


def _expand(text: str, step: StubStep, match: re.Match[str] | None) -> str:
    return match.expand(text) if step.expand and match is not None else text


def _completion(step: StubStep, body: dict[str, Any], n: int,
                match: re.Match[str] | None) -> dict[str, Any]:
    content = step.content
    if step.expand and match is not None and content is not None:
        content = match.expand(content)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if step.tool_calls:
        message["tool_calls"] = [{
            "id": c.id or f"call_stub_{n}_{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": _expand(c.arguments, step, match) if isinstance(c.arguments, str)
                         else json.dumps(c.arguments)},
        } for i, c in enumerate(step.tool_calls)]
    usage = step.usage or {
        "prompt_tokens": len(json.dumps(body.get("messages", []))) // 4 + 1,
        "completion_tokens": len(json.dumps(message)) // 4 + 1,
    }
    usage = {**usage, "total_tokens": usage.get("prompt_tokens", 0)
             + usage.get("completion_tokens", 0)}
    return {
        "id": f"chatcmpl-stub-{n}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [{"index": 0, "message": message, "finish_reason": step.finish_reason
                     or ("tool_calls" if step.tool_calls else "stop")}],
        "usage": usage,
    }


def build_app(script: StubScript) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    state = _State(script)

    async def completions(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        step, source, match = state.choose(body)
        state.log.append({"index": len(state.log), "t": time.time(), "path": request.url.path,
                          "authorization": request.headers.get("authorization"),
                          "body": body, "served_by": source})
        state.served += 1
        if step is None:
            return JSONResponse({"error": {"message": "stub script exhausted",
                                           "type": "stub_exhausted"}}, status_code=418)
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if step.status is not None:
            payload = step.body if step.body is not None else {
                "error": {"message": f"stub error {step.status}", "type": "stub_error"}}
            if isinstance(payload, str):
                return Response(payload, status_code=step.status, headers=step.headers)
            return JSONResponse(payload, status_code=step.status, headers=step.headers)
        if step.raw is not None:
            return Response(step.raw, status_code=200, headers=step.headers,
                            media_type="application/json")
        if step.json_body is not None:
            return JSONResponse(step.json_body, headers=step.headers)
        if not isinstance(body, dict):
            return JSONResponse({"error": {"message": "request body is not JSON"}},
                                status_code=400)
        return JSONResponse(_completion(step, body, state.served, match), headers=step.headers)

    async def requests_log(request: Request) -> Response:
        if request.method == "DELETE":
            state.log = []
            return JSONResponse({"ok": True})
        return JSONResponse(state.log)

    async def put_script(request: Request) -> Response:
        try:
            state.load(StubScript.model_validate(json.loads(await request.body())))
        except ValueError as e:  # pydantic's ValidationError is a ValueError
            return JSONResponse({"error": str(e)}, status_code=422)
        return JSONResponse({"ok": True})

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "pid": os.getpid()})

    return Starlette(routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models), Route("/models", models),
        Route("/_requests", requests_log, methods=["GET", "DELETE"]),
        Route("/_script", put_script, methods=["PUT"]),
        Route("/_health", health),
    ])


def _exit_when_parent_dies() -> None:
    """stdin is a pipe from the parent: EOF means it is gone, so leave no orphan behind."""
    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)
    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Scriptable OpenAI-compatible stub server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--script", help="JSON file: a StubScript or a list of steps")
    parser.add_argument("--watch-stdin", action="store_true",
                        help="exit when stdin closes (used by OpenAIStub)")
    args = parser.parse_args(argv)
    script = StubScript()
    if args.script:
        with open(args.script) as f:
            script = StubScript.of(json.load(f))
    if args.watch_stdin:
        _exit_when_parent_dies()
    # Bind the socket here so the real port is known before serving (no free-port race).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(build_app(script), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# --------------------------------------------------------------------------- the Python handle


class OpenAIStub:
    """A stub server process. ``with OpenAIStub(script) as stub: ... stub.base_url ...``
    (``async with`` works too). ``load(script)`` swaps the script and clears the log."""

    def __init__(self, script: StubScript | dict[str, Any] | list[Any] | None = None, *,
                 host: str = "127.0.0.1", startup_timeout_s: float = 20.0) -> None:
        self.script = StubScript.of(script)
        self.host = host
        self.port: int | None = None
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._script_file: str | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("stub not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI-compatible client takes as ``base_url``."""
        return f"{self.url}/v1"

    def start(self) -> OpenAIStub:
        if self.proc is not None:
            return self
        fd, self._script_file = tempfile.mkstemp(prefix="openai_stub_", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(self.script.model_dump_json(exclude_none=True))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "toolzoo.testing.openai_stub", "--host", self.host,
             "--port", "0", "--script", self._script_file, "--watch-stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
        atexit.register(self.stop)
        port = self._read_port()
        self.port = port
        deadline = time.monotonic() + self.startup_timeout_s
        while True:  # the socket is bound before uvicorn serves: wait for a real answer
            try:
                if httpx.get(f"{self.url}/_health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("openai stub did not come up")
            time.sleep(0.02)

    def _read_port(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(self.startup_timeout_s)
        line = result[0].decode() if result else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"openai stub failed to start: {line!r}")
        return int(line.split()[1])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._script_file is not None:
            try:
                os.unlink(self._script_file)
            except OSError:
                pass
            self._script_file = None
        atexit.unregister(self.stop)

    # -- control
    def load(self, script: StubScript | dict[str, Any] | list[Any] | None) -> None:
        self.script = StubScript.of(script)
        r = httpx.put(f"{self.url}/_script", content=self.script.model_dump_json(), timeout=5)
        r.raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        """Every request received since the last load/clear: ``index``, ``t`` (epoch seconds),
        ``path``, ``authorization``, ``body`` (parsed JSON) and ``served_by``."""
        r = httpx.get(f"{self.url}/_requests", timeout=5)
        r.raise_for_status()
        return r.json()

    def bodies(self) -> list[Any]:
        return [r["body"] for r in self.requests()]

    def clear(self) -> None:
        httpx.delete(f"{self.url}/_requests", timeout=5).raise_for_status()

    # -- context managers
    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> OpenAIStub:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


def stub_fixture(scope: str = "session", name: str = "openai_stub") -> Any:
    """A pytest fixture yielding a started :class:`OpenAIStub` (empty script; call
    ``stub.load(...)`` in each test). In a conftest: ``openai_stub = stub_fixture()``."""
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def _fixture() -> Any:
        with OpenAIStub() as stub:
            yield stub

    return _fixture


if __name__ == "__main__":
    main()
