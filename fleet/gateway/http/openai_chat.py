"""OpenAI Chat Completions (``POST /v1/chat/completions``) as a :class:`Dialect`.

The canonical form *is* Chat Completions, so this dialect mostly validates and
cleans: it keeps the parameters a model call may carry and drops the rest (a
client must never set the gateway's ``api_base``, ``api_key`` or litellm's
``mock_response``), and it renders litellm's objects, which carry many
``None`` fields, into the compact shapes the official ``openai`` client parses.

Streams follow the API: ``data: {chunk}`` frames, the usage chunk (empty
``choices``) only when ``stream_options.include_usage`` asked for it, and
``data: [DONE]`` last.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fleet.gateway.http.common import OPENAI_CLIENT_ERROR_TYPES, dumps
from fleet.gateway.http.dialect import BadRequest, ChatRequest, ErrorKind

#: Request fields passed on to the model, as they are. Others are ignored, as the
#: API's optional features (``store``, ``metadata``, ``prediction`` ...) would be
#: by a provider that lacks them; ``n`` > 1 is refused (see ``parse``).
PASSED = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "parallel_tool_calls",
        "seed",
        "user",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
    }
)

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

_TYPES: dict[ErrorKind, tuple[str, str | None]] = {
    **OPENAI_CLIENT_ERROR_TYPES,
    "provider": ("api_error", "provider_error"),
    "timeout": ("api_error", "timeout"),
    "unavailable": ("api_error", "unavailable"),
}


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", "tools")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(fn, dict):
            raise BadRequest(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}", f"tools[{i}]")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise BadRequest(f"tools[{i}].function.name must be a non-empty string", f"tools[{i}].function.name")


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object", f"messages[{i}]")
        if m.get("role") not in _ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {sorted(_ROLES)}", f"messages[{i}].role")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise BadRequest(f"messages[{i}].content must be a string or an array", f"messages[{i}].content")
    return messages


def _clean(value: Any) -> Any:
    """Drop ``None`` members of objects (litellm dumps every optional field)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _usage(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    tin = int(usage.get("prompt_tokens") or 0)
    tout = int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}


def _message(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content"), "refusal": None}
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {
                "id": c.get("id"),
                "type": "function",
                "function": {
                    "name": (c.get("function") or {}).get("name"),
                    "arguments": (c.get("function") or {}).get("arguments") or "",
                },
            }
            for c in calls
        ]
    return out


class OpenAIChat:
    """``POST /v1/chat/completions``."""

    name = "openai.chat"

    def parse(self, body: Any) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' must be a non-empty string", "model")
        messages = _check_messages(body.get("messages"))
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequest("'stream' must be a boolean", "stream")
        n = body.get("n")
        if n not in (None, 1):
            raise BadRequest("the fleet's gateway answers one choice per call: 'n' must be 1", "n")
        params = {k: v for k, v in body.items() if k in PASSED and v is not None}
        if "max_tokens" not in params and isinstance(body.get("max_completion_tokens"), int):
            params["max_tokens"] = body["max_completion_tokens"]
        if "max_tokens" in params and (not isinstance(params["max_tokens"], int) or params["max_tokens"] < 1):
            raise BadRequest("'max_tokens' must be a positive integer", "max_tokens")
        if "tools" in params:
            _check_tools(params["tools"])
        fmt = params.get("response_format")
        if fmt is not None and not (isinstance(fmt, dict) and isinstance(fmt.get("type"), str)):
            raise BadRequest("'response_format' must be an object with a 'type'", "response_format")
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise BadRequest("'stream_options' must be an object", "stream_options")
        include_usage = bool((options or {}).get("include_usage")) and stream
        return ChatRequest(model=model, messages=messages, params=params, stream=stream, include_usage=include_usage)

    def render(self, req: ChatRequest, completion: dict[str, Any]) -> dict[str, Any]:
        choices = []
        for i, choice in enumerate(completion.get("choices") or ()):
            choices.append(
                {
                    "index": choice.get("index", i),
                    "message": _message(choice.get("message") or {}),
                    "finish_reason": choice.get("finish_reason") or "stop",
                    "logprobs": choice.get("logprobs"),
                }
            )
        return {
            "id": completion.get("id") or "chatcmpl-fleet",
            "object": "chat.completion",
            "created": int(completion.get("created") or time.time()),
            "model": completion.get("model") or req.model,
            "choices": choices,
            "usage": _usage(completion.get("usage")) or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "system_fingerprint": None,
        }

    async def render_stream(self, req: ChatRequest, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        created = int(time.time())
        async for chunk in chunks:
            choices = chunk.get("choices") or []
            usage = _usage(chunk.get("usage"))
            head = {
                "id": chunk.get("id") or "chatcmpl-fleet",
                "object": "chat.completion.chunk",
                "created": int(chunk.get("created") or created),
                "model": chunk.get("model") or req.model,
            }
            if choices:
                out_choices = [
                    {
                        "index": c.get("index", 0),
                        "delta": _clean(c.get("delta") or {}),
                        "finish_reason": c.get("finish_reason") or None,
                    }
                    for c in choices
                ]
                frame = {**head, "choices": out_choices}
                if req.include_usage:
                    frame["usage"] = None
                yield f"data: {dumps(frame)}\n\n".encode()
            if usage is not None and req.include_usage:
                yield f"data: {dumps({**head, 'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    def error(self, kind: ErrorKind, message: str, param: str | None = None) -> dict[str, Any]:
        etype, code = _TYPES.get(kind, ("api_error", None))
        return {"error": {"message": message, "type": etype, "param": param, "code": code}}

    def stream_error(self, kind: ErrorKind, message: str) -> bytes:
        return f"data: {dumps(self.error(kind, message))}\n\n".encode()


DIALECT = OpenAIChat()
