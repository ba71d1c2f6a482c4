"""The one OpenAI-compatible chat-completions client.

Agents, LLM user simulators, judges, rubric generation, synthesis and simulated tools all talk
to endpoints through :class:`LLMClient`, so retries, failure attribution and token accounting
behave the same everywhere. This module sits at the bottom layer: it imports only ``core``.

Failure model (callers map these onto their own error types):

* :class:`LLMUnavailable` — the endpoint could not be reached or kept failing (429, 5xx, 408,
  timeouts, connection errors) after ``max_retries`` retries. An infrastructure failure.
* :class:`LLMBadResponse` — the server answered 2xx but the body was not JSON or had no usable
  ``choices``, after ``bad_response_retries`` retries. Also infrastructure.
* :class:`LLMRequestError` — a 4xx other than 408/429: the request itself was refused (bad
  model name, bad key, unsupported parameter). Never retried.
  :class:`LLMContextOverflow` is the subclass for "prompt longer than the context window".
* :class:`LLMStructuredError` — :meth:`LLMClient.structured` got replies but none parsed into
  an object valid against the schema.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import jsonschema
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from toolzoo.clock import credit_harness, harness_section
from toolzoo.core import FunctionCall, Message, ToolCall, ToolSpecView, Usage

log = logging.getLogger("toolzoo.llm")

DEFAULT_BASE_URL = "https://api.openai.com/v1"  # what the official OpenAI SDK defaults to


# --------------------------------------------------------------------------- errors


class LLMError(Exception):
    """Base of every error this client raises."""

    def __init__(self, message: str, *, attempts: int = 0, status: int | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class LLMUnavailable(LLMError):
    """Endpoint unreachable or failing (429/5xx/timeouts/connection) after bounded retries."""


class LLMBadResponse(LLMError):
    """A 2xx answer that was not a usable chat completion, after bounded retries."""


class LLMRequestError(LLMError):
    """The server refused the request with a non-retryable 4xx."""

    def __init__(self, message: str, *, attempts: int = 0, status: int | None = None,
                 body: str = "") -> None:
        super().__init__(message, attempts=attempts, status=status)
        self.body = body


class LLMContextOverflow(LLMRequestError):
    """The prompt does not fit the model's context window (a 400 saying so)."""


class LLMStructuredError(LLMBadResponse):
    """No reply parsed into a JSON object valid against the requested schema."""


# --------------------------------------------------------------------------- config and results


class LLMConfig(BaseModel):
    """How to reach one OpenAI-compatible endpoint and how to sample from it."""

    model_config = ConfigDict(extra="forbid")

    model: str
    base_url: str | None = None  # falls back to $base_url_env, then the OpenAI API
    base_url_env: str = "OPENAI_BASE_URL"
    api_key: SecretStr | None = None  # SecretStr: never written out with resolved configs
    api_key_env: str = "OPENAI_API_KEY"
    headers: dict[str, str] = Field(default_factory=dict)

    timeout_s: float = Field(60.0, gt=0)  # connect / read / write, each
    max_retries: int = Field(4, ge=0)  # retries on 429, 5xx, 408, timeouts, connection errors
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    retry_after_max_s: float = Field(60.0, ge=0)  # cap on a server's Retry-After
    bad_response_retries: int = Field(2, ge=0)  # retries on non-JSON / choice-less 2xx bodies
    structured_retries: int = Field(2, ge=0)  # re-asks when structured() output does not parse

    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into every request

    max_connections: int = Field(100, ge=1)
    max_keepalive_connections: int = Field(20, ge=0)

    def resolved_base_url(self) -> str:
        url = self.base_url or os.environ.get(self.base_url_env) or DEFAULT_BASE_URL
        return url.rstrip("/")

    def resolved_api_key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get(self.api_key_env) or None


class ChatResult(BaseModel):
    """One chat completion: the assistant message (usage filled in) plus what came with it."""

    message: Message
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 1
    seconds: float = 0.0


# --------------------------------------------------------------------------- JSON extraction

_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n?(.*?)```", re.S)
_MAX_SCAN = 256  # '{' positions tried before giving up: bounds the worst case on hostile text


def _loads_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def extract_json_object(text: Any) -> dict[str, Any] | None:
    """The first JSON object in a model's reply, or None. Never raises.

    Tries, in order: each fenced code block, the whole text, then every ``{`` position with a
    raw decode (so prose before and after the object is ignored)."""
    if not isinstance(text, str):
        return None
    for block in _FENCE.findall(text):
        if (obj := _loads_object(block.strip())) is not None:
            return obj
    if (obj := _loads_object(text.strip())) is not None:
        return obj
    decoder = json.JSONDecoder()
    pos = text.find("{")
    for _ in range(_MAX_SCAN):
        if pos < 0:
            break
        try:
            value, _end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            pass
        else:
            if isinstance(value, dict):
                return value
        pos = text.find("{", pos + 1)
    return None


# --------------------------------------------------------------------------- response parsing


class _Malformed(Exception):
    """A 2xx body that is not a usable chat completion."""


def _text_of(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise _Malformed(f"message content has type {type(content).__name__}")


def _tool_calls_of(raw_calls: Any) -> list[ToolCall] | None:
    if not raw_calls:
        return None
    if not isinstance(raw_calls, list):
        raise _Malformed("tool_calls is not a list")
    calls = []
    for raw in raw_calls:
        if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
            raise _Malformed("tool call without a function object")
        fn = raw["function"]
        args = fn.get("arguments")
        # Keep the model's argument text verbatim (malformed JSON included): the episode loop
        # answers bad arguments with a tool error, which is the agent's mistake to own.
        if args is None:
            args = "{}"
        elif not isinstance(args, str):  # some servers send an object; its JSON text is exact
            args = json.dumps(args)
        calls.append(ToolCall(
            id=str(raw.get("id") or f"call_{uuid.uuid4().hex[:12]}"),
            function=FunctionCall(name=str(fn.get("name") or ""), arguments=args),
        ))
    return calls


def parse_completion(data: Any) -> tuple[Message, Usage, str | None]:
    """Turn a chat-completions response body into (assistant message, usage, finish_reason)."""
    if not isinstance(data, dict):
        raise _Malformed(f"body is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Malformed("body has no choices")
    choice = choices[0]
    msg = choice.get("message")
    if not isinstance(msg, dict):
        raise _Malformed("choice has no message")
    u = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    try:
        usage = Usage(prompt_tokens=int(u.get("prompt_tokens") or 0),
                      completion_tokens=int(u.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        usage = Usage()
    message = Message(role="assistant", content=_text_of(msg.get("content")),
                      tool_calls=_tool_calls_of(msg.get("tool_calls")), usage=usage)
    finish = choice.get("finish_reason")
    return message, usage, finish if isinstance(finish, str) else None


# --------------------------------------------------------------------------- the client

_RETRY_STATUS = {408, 429}
_OVERFLOW = re.compile(r"context[_ ]length|maximum context|context window|too many tokens|"
                       r"prompt is too long", re.I)


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _as_message(m: Message | dict[str, Any]) -> Message:
    return m if isinstance(m, Message) else Message.model_validate(m)


class LLMClient:
    """An OpenAI-compatible chat client. One instance can serve many concurrent episodes: it
    pools connections (limits in the config) and keeps running token totals in ``usage``.

    The underlying ``httpx.AsyncClient`` is created on first use, inside the running loop."""

    def __init__(self, config: LLMConfig, *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.url = f"{config.resolved_base_url()}/chat/completions"
        self._http = http
        self._owns_http = http is None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop self._http belongs to
        self.usage = Usage()
        self.requests = 0  # HTTP requests sent, retries included
        self.completions = 0  # successful completions
        self._json_schema_ok = True  # flips off once a server rejects response_format

    # -- lifecycle
    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._owns_http and self._http is not None and self._loop is not loop:
            # httpx pools are bound to the loop that opened them; a caller that runs each step
            # under its own asyncio.run (a gymnasium Env) gets a fresh pool per loop.
            self._http = None
        if self._http is None:
            self._loop = loop
            cfg = self.config
            headers = {"Content-Type": "application/json", **cfg.headers}
            if (key := cfg.resolved_api_key()):
                headers["Authorization"] = f"Bearer {key}"
            self._http = httpx.AsyncClient(
                # pool=None: queueing for a pooled connection under heavy concurrency is not a
                # timeout of the endpoint and must not burn retries.
                timeout=httpx.Timeout(cfg.timeout_s, pool=None),
                limits=httpx.Limits(max_connections=cfg.max_connections,
                                    max_keepalive_connections=cfg.max_keepalive_connections),
                headers=headers,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.aclose()
        self._http = None

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- requests
    def _body(self, messages: list[Message], tools: list[ToolSpecView] | None,
              response_format: dict[str, Any] | None, overrides: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        body: dict[str, Any] = {"model": cfg.model,
                                "messages": [m.to_openai() for m in messages]}
        for key in ("temperature", "max_tokens", "seed"):
            if (value := getattr(cfg, key)) is not None:
                body[key] = value
        if tools:  # an empty list is omitted: some servers reject "tools": []
            body["tools"] = [t.to_openai() for t in tools]
        if response_format is not None:
            body["response_format"] = response_format
        body.update(cfg.extra_body)
        for key, value in overrides.items():  # None removes a default
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    def _backoff(self, retry: int) -> float:
        cfg = self.config
        base = min(cfg.backoff_max_s, cfg.backoff_base_s * (2 ** (retry - 1)))
        return base * random.uniform(0.5, 1.0)  # jitter de-synchronises concurrent episodes

    async def chat(self, messages: list[Message] | list[dict[str, Any]],
                   tools: list[ToolSpecView] | None = None,
                   response_format: dict[str, Any] | None = None,
                   **overrides: Any) -> ChatResult:
        """One chat completion, with bounded retries. ``overrides`` replace request fields
        (``temperature=0``, ``tool_choice="required"``, ...); an override of None drops one."""
        cfg = self.config
        body = self._body([_as_message(m) for m in messages], tools, response_format, overrides)
        http = self._client()
        started = time.monotonic()
        attempts = transient = bad = 0
        while True:
            attempts += 1
            self.requests += 1
            wait: float | None = None
            attempt_started = time.perf_counter()
            try:
                resp = await http.post(self.url, json=body)
            except httpx.TimeoutException as e:
                reason = f"timeout after {cfg.timeout_s}s ({type(e).__name__})"
            except httpx.TransportError as e:
                reason = f"connection error ({type(e).__name__}: {e})"
            else:
                status = resp.status_code
                if status in _RETRY_STATUS or status >= 500:
                    reason = f"HTTP {status}: {resp.text[:200]}"
                    if (ra := _retry_after_s(resp.headers.get("retry-after"))) is not None:
                        wait = min(ra, cfg.retry_after_max_s)
                elif status >= 300:
                    text = resp.text[:2000]
                    kind = LLMContextOverflow if status == 400 and _OVERFLOW.search(text) \
                        else LLMRequestError
                    raise kind(f"HTTP {status} from {self.url}: {text[:300]}",
                               attempts=attempts, status=status, body=text)
                else:
                    try:
                        data = resp.json()
                        message, usage, finish = parse_completion(data)
                    except (ValueError, _Malformed) as e:
                        bad += 1
                        why = str(e) if isinstance(e, _Malformed) else "body is not valid JSON"
                        log.warning("bad response from %s (%s): %.200s", self.url, why, resp.text)
                        if bad > cfg.bad_response_retries:
                            raise LLMBadResponse(
                                f"unusable response from {self.url} after {attempts} attempts:"
                                f" {why}", attempts=attempts, status=status) from None
                        credit_harness("endpoint_retry", time.perf_counter() - attempt_started)
                        with harness_section("endpoint_retry"):
                            await asyncio.sleep(self._backoff(bad))
                        continue
                    self.completions += 1
                    self.usage = Usage(
                        prompt_tokens=self.usage.prompt_tokens + usage.prompt_tokens,
                        completion_tokens=self.usage.completion_tokens + usage.completion_tokens)
                    return ChatResult(message=message, usage=usage, finish_reason=finish,
                                      raw=data, attempts=attempts,
                                      seconds=time.monotonic() - started)
            transient += 1
            # A failed attempt and the backoff after it are the harness's time, not the agent's
            # (toolzoo.clock): an overloaded endpoint must not run down an episode's limits.
            credit_harness("endpoint_retry", time.perf_counter() - attempt_started)
            if transient > cfg.max_retries:
                raise LLMUnavailable(f"{self.url} unavailable after {attempts} attempts: {reason}",
                                     attempts=attempts)
            delay = wait if wait is not None else self._backoff(transient)
            log.info("retrying %s in %.2fs (%s)", self.url, delay, reason)
            with harness_section("endpoint_retry"):
                await asyncio.sleep(delay)

    async def structured(self, messages: list[Message] | list[dict[str, Any]],
                         schema: dict[str, Any], name: str, **overrides: Any) -> dict[str, Any]:
        """A JSON object valid against ``schema``.

        Asks with ``response_format={"type": "json_schema", ...}``; if the server refuses that
        with a 4xx, falls back (for the rest of this client's life) to stating the schema in the
        prompt. Replies are parsed leniently (code fences, prose around the object) and
        validated; an invalid reply is shown back to the model with the error, at most
        ``structured_retries`` times, before :class:`LLMStructuredError`."""
        jsonschema.validators.validator_for(schema).check_schema(schema)
        validator = jsonschema.validators.validator_for(schema)(schema)
        conversation = [_as_message(m) for m in messages]
        instruction = Message(role="user", content=(
            f"Reply with only a JSON object (no prose, no code fences) named {name!r} that is "
            f"valid against this JSON Schema:\n{json.dumps(schema, sort_keys=True)}"))
        if not self._json_schema_ok:
            conversation.append(instruction)
        fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
        problem = ""
        asks = 0
        while asks <= self.config.structured_retries:
            use_fmt = self._json_schema_ok
            try:
                result = await self.chat(conversation, response_format=fmt if use_fmt else None,
                                         **overrides)
            except LLMContextOverflow:
                raise
            except LLMRequestError as e:
                if not use_fmt or e.status not in (400, 404, 415, 422):
                    raise
                log.info("%s refused response_format (%s); prompting for JSON instead",
                         self.url, e.status)
                self._json_schema_ok = False
                conversation.append(instruction)
                continue  # the refusal does not count as an ask
            asks += 1
            text = result.message.content or ""
            obj = extract_json_object(text)
            if obj is None:
                problem = "no JSON object found in the reply"
            else:
                error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
                if error is None:
                    return obj
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                problem = f"at {where}: {error.message}"
            conversation += [Message(role="assistant", content=text),
                             Message(role="user", content=(
                                 f"That reply was not usable ({problem}). Reply with only the "
                                 f"JSON object, valid against the schema."))]
        raise LLMStructuredError(f"{name}: no valid JSON object after {asks} replies: {problem}",
                                 attempts=asks)


def client_or_own(config: LLMConfig | None, client: LLMClient | None, owner: str) -> tuple[LLMClient, bool]:
    """The client a component (``owner``, for the error) talks through: the shared ``client``
    it was given, else one of its own made from ``config``. The flag is True for its own: only
    then does the component's ``aclose`` close it (a shared client is its maker's to close)."""
    if client is not None:
        return client, False
    if config is None:
        raise ValueError(f"{owner} needs an LLMConfig or an LLMClient")
    return LLMClient(config), True
