"""The ``openai`` agent: any OpenAI-compatible chat-completions endpoint (vLLM's included).

Tool calls come back exactly as the server produced them, malformed arguments and unknown
tool names included (see :func:`validate_tool_call`): those are the model's mistakes and the
episode loop answers them with tool errors. Only infrastructure failures raise
:class:`AgentError`."""

from __future__ import annotations

from typing import Literal

from toolzoo.agents.base import AgentError
from toolzoo.agents.toolcall_check import validate_tool_call
from toolzoo.core import Message, Task, TokenInfo, ToolSpecView, Usage
from toolzoo.llm import LLMClient, LLMConfig, LLMContextOverflow, LLMError, client_or_own

__all__ = ["OpenAIAgent", "validate_tool_call"]


class OpenAIAgent:
    """An Agent backed by an OpenAI-compatible endpoint.

    Pass ``client`` to share one pooled :class:`LLMClient` between the agents of many concurrent
    episodes (the runner should); otherwise the agent makes its own from ``config``.

    ``context_overflow``: what a "prompt exceeds the context window" 400 means. ``"agent"``
    (default) answers with an empty assistant message, so the episode is judged and fails as
    the model's failure — long tasks that do not fit are part of what a half-life measures.
    ``"infra"`` raises AgentError instead."""

    def __init__(self, config: LLMConfig | None = None, *, client: LLMClient | None = None,
                 system_prompt: str | None = None,
                 context_overflow: Literal["agent", "infra"] = "agent") -> None:
        self.client, self._owns_client = client_or_own(config, client, "OpenAIAgent")
        self.system_prompt = system_prompt
        self.context_overflow = context_overflow
        self.usage = Usage()  # this episode's tokens (reset by start)

    async def start(self, task: Task) -> None:
        # Model-backed: the task (and its reference solution) is deliberately not read.
        self.usage = Usage()

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        if self.system_prompt and not any(m.role == "system" for m in messages):
            messages = [Message(role="system", content=self.system_prompt), *messages]
        try:
            result = await self.client.chat(messages, tools=tools)
        except LLMContextOverflow as e:
            if self.context_overflow == "infra":
                raise AgentError(f"context overflow: {e}") from e
            return Message(role="assistant", content="", usage=Usage())
        except LLMError as e:
            raise AgentError(f"{type(e).__name__}: {e}") from e
        self.usage = Usage(prompt_tokens=self.usage.prompt_tokens + result.usage.prompt_tokens,
                           completion_tokens=self.usage.completion_tokens
                           + result.usage.completion_tokens)
        tokens = token_info(result.raw)
        if tokens is not None:
            return result.message.model_copy(update={"tokens": tokens})
        return result.message  # usage already set on it

    async def aclose(self) -> None:
        """Close the client if this agent made it (a shared client is its owner's to close)."""
        if self._owns_client:
            await self.client.aclose()


def token_info(raw: dict) -> TokenInfo | None:
    """The sampled token ids (and log-probs) of a chat completion, when the endpoint returned
    them: vLLM's ``return_token_ids`` fields (``prompt_token_ids`` at the top, ``token_ids`` in
    the choice) and the ``logprobs.content`` of ``logprobs: true``. Ask for them with
    ``extra_body: {return_token_ids: true, logprobs: true}`` in the agent's config."""
    try:
        choice = raw["choices"][0]
        prompt = raw.get("prompt_token_ids") or choice.get("prompt_token_ids")
        completion = choice.get("token_ids") or choice.get("response_token_ids")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if not prompt or not completion:
        return None
    content = ((choice.get("logprobs") or {}).get("content")) or []
    logprobs = [float(c["logprob"]) for c in content] if len(content) == len(completion) else []
    return TokenInfo(prompt_ids=list(prompt), completion_ids=list(completion), logprobs=logprobs)
