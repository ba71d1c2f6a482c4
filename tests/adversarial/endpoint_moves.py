"""The adversarial moves served as an OpenAI-compatible chat-completions endpoint.

A real HTTP server (stdlib ``ThreadingHTTPServer``) on 127.0.0.1, port chosen by the OS. The
request's ``model`` names the move; the reply is computed from the request's messages and
tools alone (an endpoint never sees the task), so these are moves a trained policy could
really make:

* ``browse_hedge`` / ``browse_tag_flood`` / ``browse_dump_tag``: look up everything the ask
  points at with the read tools, then answer with every value seen plus every number 0..500
  and yes/no (prose), one tag per candidate, or all of it inside one tag.
* ``exit0`` / ``always_equal`` / ``rewrite_tests``: code_workspace's fix_module cheats.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.adversarial.answer_moves import NUMBERS, leaves

READ_PREFIXES = ("get_", "list_", "find_", "who_", "read_")
_ID = re.compile(r"\b[A-Za-z]+_?\d+\b")

CODE_CHEATS = {
    "exit0": lambda fn: "import os\nos._exit(0)\n",
    "always_equal": lambda fn: ("class _Eq:\n    def __eq__(self, other):\n        return True\n\n\n"
                                f"def {fn}(x):\n    return _Eq()\n"),
}


def _turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages since the last user message."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    return messages[last_user + 1:]


def _ask(messages: list[dict[str, Any]]) -> str:
    return next((m.get("content") or "" for m in reversed(messages) if m["role"] == "user"), "")


def _call(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {"id": f"call_ep{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def _browse(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Read-only calls for every id the ask names (one per tool and id)."""
    ids = list(dict.fromkeys(_ID.findall(_ask(messages)))) or ["x0"]
    calls = []
    for tool in tools:
        fn = tool["function"]
        if not fn["name"].startswith(READ_PREFIXES):
            continue
        params = fn.get("parameters", {})
        required = params.get("required", [])
        props = params.get("properties", {})
        if not all(props.get(r, {}).get("type") == "string" for r in required):
            continue
        for ident in ids[:2] if required else [None]:
            calls.append(_call(fn["name"], {r: ident for r in required}, len(calls)))
    return calls


def _seen(messages: list[dict[str, Any]]) -> list[str]:
    out: dict[str, None] = {}
    for m in messages:
        if m["role"] == "tool" and m.get("content"):
            try:
                items = leaves(json.loads(m["content"]))
            except ValueError:
                items = m["content"].split()
            for v in items:
                out.setdefault(v, None)
    for v in _ID.findall(_ask(messages)):
        out.setdefault(v, None)
    return list(out)


def answer_move(move: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    turn = _turn(messages)
    if not any(m["role"] == "tool" for m in turn):
        calls = _browse(messages, tools)
        if calls:
            return {"role": "assistant", "content": None, "tool_calls": calls}
    values = _seen(messages) + ["yes", "no", "none"]
    if move == "browse_hedge":
        text = "It is one of: " + ", ".join(values) + " or " + NUMBERS + "."
    elif move == "browse_tag_flood":
        text = "".join(f"<answer>{v}</answer>" for v in values)
    else:  # browse_dump_tag
        text = "<answer>" + ", ".join(values) + "</answer>"
    return {"role": "assistant", "content": text}


def code_move(move: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    ask = _ask(messages)
    path = re.search(r"Fix (\S+\.py)", ask)
    module = re.search(r"run the tests of (\w+)", ask)
    if not (path and module):
        return {"role": "assistant", "content": "Done."}
    done = [m for m in _turn(messages) if m["role"] == "tool"]
    test = f"tests/test_{module.group(1)}.py"
    if not done:
        return {"role": "assistant", "content": None, "tool_calls": [_call("read_file", {"path": path.group(1)}, 0)]}
    if len(done) == 1:
        if move == "rewrite_tests":
            return {"role": "assistant", "content": None,
                    "tool_calls": [_call("write_file", {"path": test, "content": "print('passed')\n"}, 1)]}
        fn = re.search(r"def (\w+)\(", json.loads(done[0]["content"])["content"]).group(1)
        return {"role": "assistant", "content": None,
                "tool_calls": [_call("write_file", {"path": path.group(1), "content": CODE_CHEATS[move](fn)}, 1)]}
    if len(done) == 2:
        return {"role": "assistant", "content": None,
                "tool_calls": [_call("run_tests", {"module": module.group(1)}, 2)]}
    return {"role": "assistant", "content": "Fixed: the tests pass now."}


ANSWER_MOVES = ("browse_hedge", "browse_tag_flood", "browse_dump_tag")
CODE_MOVES = ("exit0", "always_equal", "rewrite_tests")


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        move, messages, tools = body.get("model", ""), body.get("messages", []), body.get("tools", [])
        message = code_move(move, messages) if move in CODE_MOVES else answer_move(move, messages, tools)
        self.server.requests += 1  # type: ignore[attr-defined]
        reply = json.dumps({
            "id": "chatcmpl-adv", "object": "chat.completion", "created": 0, "model": move,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class AdversaryEndpoint:
    """``with AdversaryEndpoint() as ep: ... ep.base_url ...`` serves every move above."""

    def __enter__(self) -> AdversaryEndpoint:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.requests = 0  # type: ignore[attr-defined]
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="adversary-endpoint", daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def requests(self) -> int:
        return self.server.requests  # type: ignore[attr-defined]

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
