"""Anthropic Messages (``POST /v1/messages``) as a :class:`~fleet.gateway.http.dialect.Dialect`.

What the ``anthropic`` SDK and Claude Code send is translated to the canonical
Chat Completions form and back; the server does everything else. Written by
hand, not with litellm's ``LiteLLMAnthropicMessagesAdapter``: importing that
adapter imports all of litellm (~2.6 s, and the server imports this module in
the supervisor before the gateway has loaded), one translation costs ~125 us
where this one costs a few, and it decides by the *requested* model name
(``claude-*`` keeps ``thinking`` and ``cache_control``) although the policy's
aliases may send the call to ``fleet/demo`` or an OpenAI model.

Choices a reader would otherwise have to guess:

- ``system`` (string or text blocks, Claude Code sends a list with
  ``cache_control``) becomes one system message; ``cache_control`` is dropped,
  as the target may not be Anthropic. A ``role: "system"`` turn inside
  ``messages`` is kept as a system message.
- ``thinking`` and ``redacted_thinking`` blocks, ``top_k``,
  ``context_management`` and other fields no canonical parameter carries are
  ignored, so a client that sends them works; server tools (``web_search_*``
  ...) are dropped: only the Anthropic API runs them. ``thinking`` is not sent
  on (the target may not be Claude), but when the client asked for it and the
  model reasons anyway (``reasoning_content``: DeepSeek, Gemini ... through
  litellm), that reasoning comes back as unsigned ``thinking`` blocks.
- ``tool_result`` blocks become ``tool`` messages placed before the rest of
  their user turn, as Chat Completions requires; their images (Claude Code's
  Read returns screenshots so) move to that user message, as OpenAI accepts
  images from users only.
- The stop sequence that ended a reply is not known in the canonical form, so
  ``stop_reason`` is ``end_turn`` unless the provider said ``stop_sequence``.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, Protocol

from fleet.gateway.http.common import ANTHROPIC_ERROR_TYPES, as_dict, dumps, new_id, number, sse_frame, type_of
from fleet.gateway.http.dialect import BadRequest, ChatRequest, ErrorKind

#: Anthropic's error ``type`` for each kind (the server sets the status).
ERROR_TYPES: Mapping[ErrorKind, str] = ANTHROPIC_ERROR_TYPES

#: Canonical ``finish_reason`` -> Anthropic ``stop_reason``.
STOP_REASONS: Mapping[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
    "stop_sequence": "stop_sequence",
}

_TOOL_CHOICES: Mapping[str, str] = {"auto": "auto", "any": "required", "none": "none"}
_IGNORED_BLOCKS = frozenset(
    {"thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result"}
)


class TokenCounter(Protocol):
    """Counts the prompt tokens of a canonical request (litellm's ``token_counter`` fits)."""

    def __call__(self, *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int: ...


def estimate_tokens(*, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """A conservative count with no tokenizer: one token per 3 bytes of JSON, plus 4 per message.

    Real tokenizers average 3.5-4.5 bytes of English per token, so this errs
    high, which is the safe side for a client deciding when to compact.
    """
    size = len(dumps(messages).encode())
    if tools:
        size += len(dumps(tools).encode())
    return math.ceil(size / 3) + 4 * len(messages)


# --------------------------------------------------------------------------- request


def _blocks(blocks: list[Any], where: str) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """Each block of a content list as (its path for errors, the block, its type); a block that
    is not an object is a bad request."""
    for i, block in enumerate(blocks):
        sub = f"{where}.{i}"
        if not isinstance(block, dict):
            raise BadRequest(f"{sub}: expected a content block object", sub)
        yield sub, block, type_of(block)


def _text_of_blocks(blocks: Any, where: str) -> str:
    """The text of a ``system`` or ``tool_result`` content: a string or a list of text blocks."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise BadRequest(f"{where}: expected a string or a list of content blocks", where)
    texts: list[str] = []
    for sub, block, kind in _blocks(blocks, where):
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{sub}.text: expected a string", f"{sub}.text")
            texts.append(text)
    return "\n".join(texts)


def _image_part(source: Any, where: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise BadRequest(f"{where}.source: expected an object", f"{where}.source")
    kind = type_of(source)
    if kind == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise BadRequest(f"{where}.source: base64 needs media_type and data", f"{where}.source")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise BadRequest(f"{where}.source: unsupported image source {kind!r}", f"{where}.source")


def _document_part(source: Any, where: str) -> dict[str, Any]:
    if isinstance(source, dict):
        kind = type_of(source)
        if kind == "text" and isinstance(source.get("data"), str):
            return {"type": "text", "text": source["data"]}
        if kind == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type") or "application/pdf"
            return {"type": "file", "file": {"file_data": f"data:{media};base64,{source['data']}"}}
        if kind == "url" and isinstance(source.get("url"), str):
            return {"type": "file", "file": {"file_id": source["url"]}}
    raise BadRequest(f"{where}.source: unsupported document source", f"{where}.source")


def _tool_result_content(content: Any, where: str) -> tuple[str, list[dict[str, Any]]]:
    """A ``tool_result``'s content as (text, attachments): images and documents cannot ride in a
    Chat Completions ``tool`` message (OpenAI refuses them there), so they travel in the user
    message that follows the tool messages."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: expected a string or a list of blocks", f"{where}.content")
    texts: list[str] = []
    attachments: list[dict[str, Any]] = []
    for sub, block, kind in _blocks(content, f"{where}.content"):
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image":
            attachments.append(_image_part(block.get("source"), sub))
        elif kind == "document":
            part = _document_part(block.get("source"), sub)
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                attachments.append(part)
    return "\n".join(texts), attachments


def _user_turn(content: Any, where: str) -> list[dict[str, Any]]:
    """One Anthropic user turn as canonical messages: its tool results first, then the rest."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: expected a string or a list of content blocks", f"{where}.content")
    tools: list[dict[str, Any]] = []
    attached: list[dict[str, Any]] = []  # tool results' images, sent after the tool messages
    parts: list[dict[str, Any]] = []
    for sub, block, kind in _blocks(content, f"{where}.content"):
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{sub}.text: expected a string", f"{sub}.text")
            parts.append({"type": "text", "text": text})
        elif kind == "image":
            parts.append(_image_part(block.get("source"), sub))
        elif kind == "document":
            parts.append(_document_part(block.get("source"), sub))
        elif kind == "search_result":
            text = _text_of_blocks(block.get("content") or [], f"{sub}.content")
            title, url = block.get("title", ""), block.get("source", "")
            parts.append({"type": "text", "text": f"{title} ({url})\n{text}" if title or url else text})
        elif kind == "tool_result":
            call_id = block.get("tool_use_id")
            if not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"{sub}.tool_use_id: required", f"{sub}.tool_use_id")
            result, attachments = _tool_result_content(block.get("content"), sub)
            if attachments:
                result = f"{result}\n" if result else ""
                result += f"({len(attachments)} attachment(s) follow in the next user message)"
                attached.append({"type": "text", "text": f"Attachments of tool result {call_id}:"})
                attached.extend(attachments)
            if block.get("is_error"):
                result = f"Error: {result}"
            tools.append({"role": "tool", "tool_call_id": call_id, "content": result})
        elif kind in _IGNORED_BLOCKS:
            continue
        else:
            raise BadRequest(f"{sub}.type: unsupported content block {kind!r}", f"{sub}.type")
    out = tools
    parts = attached + parts
    if parts:
        if len(parts) == 1 and parts[0]["type"] == "text":
            out.append({"role": "user", "content": parts[0]["text"]})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _assistant_turn(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: expected a string or a list of content blocks", f"{where}.content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for sub, block, kind in _blocks(content, f"{where}.content"):
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            call_id, name = block.get("id"), block.get("name")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise BadRequest(f"{sub}: tool_use needs id and name", sub)
            arguments = block.get("input", {})
            calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": dumps(arguments)}})
        elif kind in _IGNORED_BLOCKS:
            continue
        else:
            raise BadRequest(f"{sub}.type: unsupported content block {kind!r} in an assistant turn", f"{sub}.type")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise BadRequest("tools: expected a list", "tools")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where}: expected an object", where)
        name = tool.get("name")
        schema = tool.get("input_schema")
        kind = type_of(tool)
        if schema is None and isinstance(kind, str) and kind != "custom":
            continue  # an Anthropic server tool (web_search_20250305 ...): only their API runs it
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name: required", f"{where}.name")
        if not isinstance(schema, dict):
            raise BadRequest(f"{where}.input_schema: expected a JSON schema object", f"{where}.input_schema")
        function: dict[str, Any] = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, params: dict[str, Any]) -> None:
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise BadRequest("tool_choice: expected an object with a type", "tool_choice")
    kind = choice["type"]
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("tool_choice.name: required when type is 'tool'", "tool_choice.name")
        params["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind in _TOOL_CHOICES:
        params["tool_choice"] = _TOOL_CHOICES[kind]
    else:
        raise BadRequest(f"tool_choice.type: unknown {kind!r}", "tool_choice.type")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        params["parallel_tool_calls"] = False


def _output_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Structured output (``output_config.format``, or the older beta ``output_format``) as a
    Chat Completions ``response_format``."""
    config = body.get("output_config")
    where = "output_config.format"
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        fmt, where = body.get("output_format"), "output_format"
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or type_of(fmt) != "json_schema":
        raise BadRequest(f"{where}: expected {{'type': 'json_schema', 'schema': ...}}", where)
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise BadRequest(f"{where}.schema: expected a JSON schema object", f"{where}.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def parse_messages_body(body: Any, *, require_max_tokens: bool = True) -> ChatRequest:
    """Translate a Messages (or ``count_tokens``, which has no ``max_tokens``) body to canonical form."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: required", "model")
    params: dict[str, Any] = {}
    max_tokens = body.get("max_tokens")
    if max_tokens is not None or require_max_tokens:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise BadRequest("max_tokens: required, an integer of at least 1", "max_tokens")
        params["max_tokens"] = max_tokens

    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        text = _text_of_blocks(system, "system")
        if text:
            messages.append({"role": "system", "content": text})
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise BadRequest("messages: required, a non-empty list", "messages")
    for i, turn in enumerate(turns):
        where = f"messages.{i}"
        if not isinstance(turn, dict):
            raise BadRequest(f"{where}: expected an object", where)
        role = turn.get("role")
        content = turn.get("content")
        if role == "user":
            messages.extend(_user_turn(content, where))
        elif role == "assistant":
            turn = _assistant_turn(content, where)
            if turn["content"] or turn.get("tool_calls"):  # a turn that was only thinking says nothing
                messages.append(turn)
        elif role == "system":
            messages.append({"role": "system", "content": _text_of_blocks(content, f"{where}.content")})
        else:
            raise BadRequest(f"{where}.role: expected 'user' or 'assistant'", f"{where}.role")

    extra: dict[str, Any] = {}
    for key in ("temperature", "top_p"):
        value = number(body, key)
        if value is not None:
            params[key] = value
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadRequest("stop_sequences: expected a list of strings", "stop_sequences")
        if stops:
            params["stop"] = stops
            extra["stop_sequences"] = stops
    tools = body.get("tools")
    if tools is not None:
        converted = _tools(tools)
        if converted:
            params["tools"] = converted
    choice = body.get("tool_choice")
    if choice is not None:
        _tool_choice(choice, params)
        if "tools" not in params:  # a tool_choice without tools is meaningless to every provider
            params.pop("tool_choice", None)
            params.pop("parallel_tool_calls", None)
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise BadRequest("metadata: expected an object", "metadata")
        # Kept, not sent as ``user``: Claude Code's user_id is longer than some providers accept there.
        extra["metadata"] = metadata
    response_format = _output_format(body)
    if response_format is not None:
        params["response_format"] = response_format
    thinking = body.get("thinking")
    if (
        isinstance(thinking, dict)
        and type_of(thinking) in ("enabled", "adaptive")
        and thinking.get("display") != "omitted"  # omitted: Anthropic sends only a signature, we have none
    ):
        extra["thinking"] = True  # a reasoning model's reasoning_content comes back as thinking blocks
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream: expected a boolean", "stream")
    return ChatRequest(model=model, messages=messages, params=params, stream=stream, include_usage=True, extra=extra)


# --------------------------------------------------------------------------- response


def _tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Anthropic's ``input`` must be; never loses them."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        return {"_raw_arguments": str(arguments)}
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def _usage(usage: Any) -> dict[str, int]:
    """Canonical usage -> Anthropic's: ``input_tokens`` excludes cache reads, as Anthropic counts them."""
    usage = usage if isinstance(usage, Mapping) else {}
    prompt = int(usage.get("prompt_tokens") or 0)
    details = usage.get("prompt_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0
    cached = min(cached, prompt)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _stop_reason(finish: Any, has_tool_use: bool) -> str:
    if has_tool_use and finish in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    return STOP_REASONS.get(finish or "stop", "end_turn")


def render_message(req: ChatRequest, completion: Any) -> dict[str, Any]:
    """A canonical chat completion as an Anthropic ``Message``."""
    data = as_dict(completion)
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if req.extra.get("thinking") and isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):  # content parts
        text = "".join(str(p.get("text", "")) for p in text if isinstance(p, Mapping))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name", ""),
                "input": _tool_input(function.get("arguments")),
            }
        )
    has_tool_use = any(block["type"] == "tool_use" for block in content)
    stop_reason = _stop_reason(choice.get("finish_reason"), has_tool_use)
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(data.get("usage")),
    }


# --------------------------------------------------------------------------- stream


async def render_events(req: ChatRequest, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Canonical chunks as Anthropic SSE: ``message_start``, ``ping``, one
    ``content_block_start``/``delta``/``stop`` run per text or tool_use block,
    ``message_delta`` (stop reason, final usage) and ``message_stop``.

    Blocks are sequential, as Anthropic's are: a text block closes when a tool
    call starts, and a tool call closes when the next one (or text) starts.
    """
    yield sse_frame(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": new_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": req.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        },
    )
    yield sse_frame("ping", {"type": "ping"})
    index = -1  # Anthropic index of the open block, -1 when none
    open_kind: str | None = None  # "thinking" | "text" | "tool_use"
    thinking = bool(req.extra.get("thinking"))
    tool_blocks: dict[int, int] = {}  # canonical tool_calls index -> Anthropic block index
    finish: Any = None
    usage: Any = None
    has_tool_use = False

    def close() -> bytes:
        nonlocal open_kind
        ending = b""
        if open_kind == "thinking":  # Anthropic signs thinking; ours comes from another model, unsigned
            delta = {"type": "signature_delta", "signature": ""}
            ending = sse_frame("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        open_kind = None
        return ending + sse_frame("content_block_stop", {"type": "content_block_stop", "index": index})

    async for raw in chunks:
        chunk = as_dict(raw)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") if thinking else None
            if reasoning and isinstance(reasoning, str):
                if open_kind != "thinking":
                    if open_kind is not None:
                        yield close()
                    index += 1
                    open_kind = "thinking"
                    block = {"type": "thinking", "thinking": "", "signature": ""}
                    yield sse_frame(
                        "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
                    )
                yield sse_frame(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": reasoning},
                    },
                )
            text = delta.get("content")
            if text:
                if open_kind != "text":
                    if open_kind is not None:
                        yield close()
                    index += 1
                    open_kind = "text"
                    yield sse_frame(
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                    )
                yield sse_frame(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}},
                )
            for call in delta.get("tool_calls") or ():
                position = call.get("index", 0)
                function = call.get("function") or {}
                if position not in tool_blocks:
                    if open_kind is not None:
                        yield close()
                    index += 1
                    open_kind = "tool_use"
                    tool_blocks[position] = index
                    has_tool_use = True
                    yield sse_frame(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {
                                "type": "tool_use",
                                "id": call.get("id") or new_id("toolu_"),
                                "name": function.get("name") or "",
                                "input": {},
                            },
                        },
                    )
                fragment = function.get("arguments")
                if fragment:
                    yield sse_frame(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": tool_blocks[position],
                            "delta": {"type": "input_json_delta", "partial_json": fragment},
                        },
                    )
    if open_kind is not None:
        yield close()
    final = _usage(usage)
    yield sse_frame(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(finish, has_tool_use), "stop_sequence": None},
            "usage": final,
        },
    )
    yield sse_frame("message_stop", {"type": "message_stop"})


# --------------------------------------------------------------------------- errors and count_tokens


def error_body(kind: ErrorKind, message: str) -> dict[str, Any]:
    """Anthropic's error shape: ``{"type": "error", "error": {"type", "message"}}``."""
    return {"type": "error", "error": {"type": ERROR_TYPES.get(kind, "api_error"), "message": message}}


def count_tokens(body: Any, counter: TokenCounter | None = None) -> dict[str, int]:
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}`` for a Messages body.

    ``counter`` is litellm's ``token_counter`` once the gateway has loaded it
    (pass ``use_default_image_token_count=True`` through a partial, or it fetches
    image URLs); without one, :func:`estimate_tokens`. Raises :class:`BadRequest`.
    """
    req = parse_messages_body(body, require_max_tokens=False)
    count: Callable[..., int] = counter or estimate_tokens
    return {"input_tokens": int(count(model=req.model, messages=req.messages, tools=req.params.get("tools")))}


class AnthropicMessages:
    """The Anthropic Messages API, stateless; see the module docstring."""

    name = "anthropic.messages"

    def parse(self, body: Any) -> ChatRequest:
        return parse_messages_body(body)

    def render(self, req: ChatRequest, completion: dict[str, Any]) -> dict[str, Any]:
        return render_message(req, completion)

    def render_stream(self, req: ChatRequest, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        return render_events(req, chunks)

    def error(self, kind: ErrorKind, message: str, param: str | None = None) -> dict[str, Any]:
        return error_body(kind, message)

    def stream_error(self, kind: ErrorKind, message: str, req: ChatRequest | None = None) -> bytes:
        """An ``error`` event, which the SDKs raise as an API error; ``req`` is not needed here."""
        return sse_frame("error", error_body(kind, message))

    def count_tokens(self, body: Any, counter: TokenCounter | None = None) -> dict[str, int]:
        return count_tokens(body, counter)


DIALECT = AnthropicMessages()
