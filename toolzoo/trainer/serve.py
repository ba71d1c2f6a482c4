"""An OpenAI-compatible chat-completions server for a local checkpoint (``toolzoo serve-model``).

Every config that takes an endpoint (agent, user simulator, judge) can then run on a local
model where vLLM is absent. Tools in the request render through the checkpoint's chat
template; Hermes ``<tool_call>`` blocks in the completion come back as ``tool_calls`` with
``finish_reason: "tool_calls"``. Concurrent requests are decoded as one batch (HFAgent's
batcher), so a run with many concurrent episodes against this server is not serialised.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from toolzoo.agents.hf import HFAgent
from toolzoo.core import FunctionCall, Message, ToolCall, ToolSpecView
from toolzoo.trainer.config import resolve_device


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send many optional fields
    model: str | None = None
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    n: int = 1
    # vLLM's extensions for RL (>= 0.10.2): the prompt's and the completion's token ids
    return_token_ids: bool = False
    logprobs: bool = False  # per-token log-probs of the sampled tokens (no top alternatives)


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))  # content parts


def to_message(d: dict[str, Any]) -> Message:
    calls = [
        ToolCall(id=c.get("id") or f"call_{uuid.uuid4().hex[:12]}",
                 function=FunctionCall(name=c["function"]["name"],
                                       arguments=c["function"].get("arguments") or "{}"))
        for c in d.get("tool_calls") or []
    ]
    return Message(role=d["role"], content=_text(d.get("content")), tool_calls=calls or None,
                   tool_call_id=d.get("tool_call_id"), name=d.get("name"))


def to_tool(d: dict[str, Any]) -> ToolSpecView:
    f = d.get("function", d)
    return ToolSpecView(name=f["name"], description=f.get("description", ""),
                        parameters=f.get("parameters") or {"type": "object", "properties": {}})


def build_app(agent: HFAgent, model_name: str):
    """The starlette app around one loaded model."""
    import torch
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def models(_: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [
            {"id": model_name, "object": "model", "created": 0, "owned_by": "toolzoo"}]})

    async def chat(request: Request) -> JSONResponse:
        try:
            req = ChatRequest.model_validate(await request.json())
            messages = [to_message(m) for m in req.messages]
            tools = [to_tool(t) for t in req.tools or []]
        except (ValidationError, KeyError, TypeError, ValueError) as e:
            return JSONResponse({"error": {"message": str(e), "type": "invalid_request_error"}}, 400)
        if req.n != 1:
            return JSONResponse({"error": {"message": "only n=1 is supported",
                                           "type": "invalid_request_error"}}, 400)
        temperature = 1.0 if req.temperature is None else req.temperature
        gen = torch.Generator().manual_seed(req.seed) if req.seed is not None else None
        max_new = req.max_completion_tokens or req.max_tokens or agent.max_new_tokens
        # concurrent requests are decoded together by the agent's batcher
        msg = await agent.agenerate(
            messages, tools, max_new_tokens=max_new,
            temperature=max(temperature, 1e-5), greedy=temperature == 0.0, generator=gen,
        )
        tokens = msg.tokens
        finished = bool(tokens.completion_ids) and tokens.completion_ids[-1] in agent.eos_ids
        finish = "tool_calls" if msg.tool_calls else ("stop" if finished else "length")
        out_msg: dict[str, Any] = {"role": "assistant", "content": msg.content}
        if msg.tool_calls:
            out_msg["tool_calls"] = [c.model_dump() for c in msg.tool_calls]
        p, c = len(tokens.prompt_ids), len(tokens.completion_ids)
        choice: dict[str, Any] = {"index": 0, "message": out_msg, "finish_reason": finish, "logprobs": None}
        body: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model or model_name,
            "choices": [choice],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        }
        if req.return_token_ids:  # as vLLM: prompt ids at the top, completion ids in the choice
            body["prompt_token_ids"] = tokens.prompt_ids
            choice["token_ids"] = tokens.completion_ids
        if req.logprobs:
            choice["logprobs"] = {"content": [
                {"token": agent.tokenizer.convert_ids_to_tokens(i), "logprob": lp, "top_logprobs": []}
                for i, lp in zip(tokens.completion_ids, tokens.logprobs)]}
        return JSONResponse(body)

    return Starlette(routes=[
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ])


def serve_model(
    ckpt: str | Path, host: str = "127.0.0.1", port: int = 8000, *,
    model_name: str | None = None, max_new_tokens: int = 256, device: str = "auto",
) -> None:
    """Load ``ckpt`` on ``device`` (as the Train format's ``device``) and serve it until
    interrupted (blocking)."""
    import uvicorn

    agent = HFAgent(ckpt, max_new_tokens=max_new_tokens, device=resolve_device(device))
    uvicorn.run(build_app(agent, model_name or Path(ckpt).name), host=host, port=port,
                log_level="warning")
