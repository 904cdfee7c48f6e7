"""OpenAI Responses (``POST /v1/responses``) as a :class:`~fleet.gateway.http.dialect.Dialect`.

The API of the OpenAI Agents SDK and Codex, translated to the canonical Chat
Completions form and back. Written by hand, not with litellm's
``LiteLLMCompletionResponsesConfig``: importing it imports all of litellm
(2.7 s measured; the server imports this module in the supervisor), and its
streaming iterator wraps litellm's own stream objects where the gateway yields
plain dicts.

The gateway keeps no conversation state, so what needs it is refused with a
clear 400 (``previous_response_id``, ``conversation``, ``background``, stored
``prompt`` templates, ``item_reference`` inputs); ``store`` is accepted and
answered ``false``. Hosted tools (``web_search``, ``file_search`` ...) run only
on OpenAI's servers: they are left out of the request (Codex offers
``web_search`` on every call, so refusing it would refuse Codex) and listed in
the request's :class:`ToolTable`. ``reasoning`` items in the input are skipped,
``developer`` messages become system messages, Codex's freeform ``custom``
tools travel as function tools with one string argument ``input`` and come back
as ``custom_tool_call`` items, and tools grouped in a ``namespace`` tool are
offered flat and their calls named back with their namespace. When the request
asks for reasoning summaries (Codex does) and the model reasons (litellm's
``reasoning_content``), the reasoning comes back as a ``reasoning`` item.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet.gateway.http.common import OPENAI_CLIENT_ERROR_TYPES, as_dict, dumps, new_id, number, sse_frame, type_of
from fleet.gateway.http.dialect import BadRequest, ChatRequest, ErrorKind

#: OpenAI's error ``type`` and ``code`` for each kind (the server sets the status).
ERROR_TYPES: Mapping[ErrorKind, tuple[str, str | None]] = {
    **OPENAI_CLIENT_ERROR_TYPES,
    "provider": ("server_error", "provider_error"),
    "timeout": ("server_error", "timeout"),
    "unavailable": ("server_error", "unavailable"),
}

#: ``response.error.code`` of a failed stream (Codex reads ``insufficient_quota`` as final, not retryable).
STREAM_ERROR_CODES: Mapping[ErrorKind, str] = {
    "rate_limit": "rate_limit_exceeded",
    "budget": "insufficient_quota",
    "invalid_request": "invalid_prompt",
}

#: The parameter a custom (freeform) tool's text travels in, as a function tool.
CUSTOM_INPUT = "input"

_CUSTOM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {CUSTOM_INPUT: {"type": "string", "description": "The tool's raw input."}},
    "required": [CUSTOM_INPUT],
    "additionalProperties": False,
}
_SKIPPED_ITEMS = frozenset({"reasoning", "compaction"})
_STATELESS = "this gateway keeps no responses: send the whole conversation in `input` (store=false)"


# --------------------------------------------------------------------------- request


def _content_parts(content: Any, where: str) -> str | list[dict[str, Any]]:
    """Responses message content (a string or input/output parts) as Chat Completions content."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"{where}: expected a string or a list of content parts", where)
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        sub = f"{where}[{i}]"
        if not isinstance(part, dict):
            raise BadRequest(f"{sub}: expected an object", sub)
        kind = type_of(part)
        if kind in ("input_text", "output_text", "text", "summary_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{sub}.text: expected a string", f"{sub}.text")
            parts.append({"type": "text", "text": text})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise BadRequest(f"{sub}.image_url: a URL or data URL is required (no file_id here)", sub)
            image: dict[str, Any] = {"url": url}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            data = part.get("file_data")
            if not isinstance(data, str):
                raise BadRequest(f"{sub}.file_data: required (no file_id here)", sub)
            file: dict[str, Any] = {"file_data": data}
            if isinstance(part.get("filename"), str):
                file["filename"] = part["filename"]
            parts.append({"type": "file", "file": file})
        else:
            raise BadRequest(f"{sub}.type: unsupported content part {kind!r}", f"{sub}.type")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts) if len(parts) != 1 else parts[0]["text"]
    return parts


def _output_parts(output: Any, where: str) -> tuple[str, list[dict[str, Any]]]:
    """A call output as (text, attachments): images and files cannot ride in a Chat Completions
    ``tool`` message (OpenAI refuses them there), so they follow in a user message."""
    if isinstance(output, str):
        return output, []
    content = _content_parts(output, where)
    if isinstance(content, str):
        return content, []
    text = "".join(p["text"] for p in content if p["type"] == "text")
    return text, [p for p in content if p["type"] != "text"]


def _assistant_for_call(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message a function call joins: the previous one, or a new one."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        return last
    message: dict[str, Any] = {"role": "assistant", "content": None}
    messages.append(message)
    return message


@dataclass(slots=True)
class ToolTable:
    """The request's tools in canonical form, and what is needed to name their calls back.

    Kept in ``req.extra[TOOLS]``. ``custom``: canonical names of freeform tools
    (answered as ``custom_tool_call``); ``namespaced``: canonical name ->
    (namespace, name) for tools declared inside a ``namespace`` tool (Codex
    groups its sub-agent tools so); ``dropped``: the hosted tool types left
    out, which only OpenAI's servers run (Codex always offers ``web_search``).
    """

    tools: list[dict[str, Any]] = field(default_factory=list)
    custom: set[str] = field(default_factory=set)
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def canonical(self, name: str, namespace: str | None) -> str:
        """The canonical name of a call to ``name`` in ``namespace`` (as the model will see it)."""
        if namespace:
            for canonical, where in self.namespaced.items():
                if where == (namespace, name):
                    return canonical
        return name

    def add(self, tool: dict[str, Any], where: str, namespace: str | None = None) -> None:
        kind, name = type_of(tool), tool.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name: required", f"{where}.name")
        canonical = name
        taken = {t["function"]["name"] for t in self.tools}
        if namespace:
            if canonical in taken:
                canonical = f"{namespace}__{name}"
            self.namespaced[canonical] = (namespace, name)
        if canonical in taken:
            raise BadRequest(f"{where}.name: {name!r} is declared twice", f"{where}.name")
        function: dict[str, Any] = {"name": canonical}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if kind == "function":
            parameters = tool.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                raise BadRequest(f"{where}.parameters: expected a JSON schema object", f"{where}.parameters")
            function["parameters"] = parameters or {"type": "object", "properties": {}}
            if isinstance(tool.get("strict"), bool):
                function["strict"] = tool["strict"]
        else:
            self.custom.add(canonical)
            function["parameters"] = _CUSTOM_SCHEMA
        self.tools.append({"type": "function", "function": function})


#: Where :func:`parse_responses_body` leaves the request's :class:`ToolTable` in ``req.extra``.
TOOLS = "responses.tools"


def _tool_table(tools: Any) -> ToolTable:
    table = ToolTable()
    if tools is None:
        return table
    if not isinstance(tools, list):
        raise BadRequest("tools: expected a list", "tools")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where}: expected an object", where)
        kind = type_of(tool)
        if kind in ("function", "custom"):
            table.add(tool, where)
        elif kind == "namespace":
            namespace, inner = tool.get("name"), tool.get("tools")
            if not isinstance(namespace, str) or not namespace or not isinstance(inner, list):
                raise BadRequest(f"{where}: a namespace needs a name and a list of tools", where)
            for j, sub in enumerate(inner):
                if not isinstance(sub, dict) or type_of(sub) not in ("function", "custom"):
                    raise BadRequest(f"{where}.tools[{j}]: expected a function or custom tool", f"{where}.tools[{j}]")
                table.add(sub, f"{where}.tools[{j}]", namespace)
        elif isinstance(kind, str):
            table.dropped.append(kind)
        else:
            raise BadRequest(f"{where}.type: required", f"{where}.type")
    return table


def _input_items(items: list[Any], messages: list[dict[str, Any]], table: ToolTable) -> None:
    attached: list[dict[str, Any]] = []  # call outputs' images, sent once the tool messages end

    def flush() -> None:
        if attached:
            messages.append({"role": "user", "content": list(attached)})
            attached.clear()

    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: expected an object", where)
        kind = type_of(item, "message")
        if kind not in ("function_call_output", "custom_tool_call_output", *_SKIPPED_ITEMS):
            flush()
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise BadRequest(f"{where}.role: expected user, assistant, system or developer", f"{where}.role")
            content = _content_parts(item.get("content"), f"{where}.content")
            if role == "assistant":
                if isinstance(content, list):
                    content = "".join(p.get("text", "") for p in content)
                messages.append({"role": "assistant", "content": content})
            else:
                messages.append({"role": "system" if role == "developer" else role, "content": content})
        elif kind in ("function_call", "custom_tool_call"):
            call_id, name = item.get("call_id"), item.get("name")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise BadRequest(f"{where}: {kind} needs call_id and name", where)
            if kind == "function_call":
                arguments = item.get("arguments")
                if not isinstance(arguments, str):
                    raise BadRequest(f"{where}.arguments: expected a JSON string", f"{where}.arguments")
            else:
                arguments = dumps({CUSTOM_INPUT: str(item.get("input", ""))})
            namespace = item.get("namespace")
            canonical = table.canonical(name, namespace if isinstance(namespace, str) else None)
            message = _assistant_for_call(messages)
            message.setdefault("tool_calls", []).append(
                {"id": call_id, "type": "function", "function": {"name": canonical, "arguments": arguments}}
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise BadRequest(f"{where}.call_id: required", f"{where}.call_id")
            output, attachments = _output_parts(item.get("output", ""), f"{where}.output")
            if attachments:
                output = f"{output}\n" if output else ""
                output += f"({len(attachments)} attachment(s) follow in the next user message)"
                attached.append({"type": "text", "text": f"Attachments of call output {call_id}:"})
                attached.extend(attachments)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
        elif kind in _SKIPPED_ITEMS:
            continue
        elif kind == "item_reference":
            raise BadRequest(f"{where}: item_reference needs stored items; {_STATELESS}", where)
        else:
            raise BadRequest(f"{where}.type: unsupported input item {kind!r}", f"{where}.type")
    flush()


def _tool_choice(choice: Any, table: ToolTable) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        kind = type_of(choice)
        if kind in ("function", "custom") and isinstance(choice.get("name"), str):
            namespace = choice.get("namespace")
            name = table.canonical(choice["name"], namespace if isinstance(namespace, str) else None)
            return {"type": "function", "function": {"name": name}}
        if kind == "allowed_tools" and choice.get("mode") in ("auto", "required"):
            return choice["mode"]
    raise BadRequest("tool_choice: expected auto, none, required or a function/custom tool by name", "tool_choice")


def _response_format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise BadRequest("text: expected an object", "text")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise BadRequest("text.format: expected an object", "text.format")
    kind = type_of(fmt)
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema, name = fmt.get("schema"), fmt.get("name")
        if not isinstance(schema, dict) or not isinstance(name, str):
            raise BadRequest("text.format: json_schema needs name and schema", "text.format")
        spec: dict[str, Any] = {"name": name, "schema": schema}
        if isinstance(fmt.get("strict"), bool):
            spec["strict"] = fmt["strict"]
        if isinstance(fmt.get("description"), str):
            spec["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": spec}
    raise BadRequest(f"text.format.type: unknown {kind!r}", "text.format.type")


def parse_responses_body(body: Any) -> ChatRequest:
    """Translate a Responses request body to canonical form; what must be echoed goes in ``extra``."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: required", "model")
    for key in ("previous_response_id", "conversation"):
        if body.get(key):
            raise BadRequest(f"{key} is not supported: {_STATELESS}", key)
    if body.get("prompt"):
        raise BadRequest("prompt templates are not supported: they are stored by OpenAI; send instructions", "prompt")
    if body.get("background"):
        raise BadRequest("background is not supported: the gateway answers in the request", "background")

    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise BadRequest("instructions: expected a string", "instructions")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    tools = body.get("tools")
    table = _tool_table(tools)
    given = body.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        _input_items(given, messages, table)
    else:
        raise BadRequest("input: required, a string or a list of items", "input")
    if not any(m["role"] != "system" for m in messages):
        raise BadRequest("input: no message to answer", "input")

    params: dict[str, Any] = {}
    max_out = body.get("max_output_tokens")
    if max_out is not None:
        if isinstance(max_out, bool) or not isinstance(max_out, int) or max_out < 1:
            raise BadRequest("max_output_tokens: expected an integer of at least 1", "max_output_tokens")
        params["max_tokens"] = max_out
    for key in ("temperature", "top_p"):
        value = number(body, key)
        if value is not None:
            params[key] = value
    if table.tools:
        params["tools"] = table.tools
        if body.get("tool_choice") is not None:
            params["tool_choice"] = _tool_choice(body["tool_choice"], table)
        if isinstance(body.get("parallel_tool_calls"), bool):
            params["parallel_tool_calls"] = body["parallel_tool_calls"]
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        params["response_format"] = response_format
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        params["user"] = user
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest("metadata: expected an object", "metadata")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream: expected a boolean", "stream")

    echo = {
        "instructions": instructions,
        "metadata": metadata or {},
        "max_output_tokens": max_out,
        "parallel_tool_calls": body.get("parallel_tool_calls", True) is not False,
        "temperature": params.get("temperature", 1.0),
        "top_p": params.get("top_p", 1.0),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": tools or [],
        "text": body.get("text") or {"format": {"type": "text"}},
        "reasoning": body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None,
        "user": body.get("user") if isinstance(body.get("user"), str) else None,
    }
    reasoning = body.get("reasoning")
    summaries = isinstance(reasoning, dict) and reasoning.get("summary") in ("auto", "concise", "detailed")
    return ChatRequest(
        model=model,
        messages=messages,
        params=params,
        stream=stream,
        include_usage=True,
        extra={"echo": echo, TOOLS: table, "reasoning_summary": summaries},
    )


# --------------------------------------------------------------------------- response


def _usage(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, Mapping) else {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details")
    output_details = usage.get("completion_tokens_details")
    cached = int(prompt_details.get("cached_tokens") or 0) if isinstance(prompt_details, Mapping) else 0
    reasoning = int(output_details.get("reasoning_tokens") or 0) if isinstance(output_details, Mapping) else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def _status(finish: Any) -> tuple[str, dict[str, str] | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _response(
    req: ChatRequest,
    rid: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: Any,
    incomplete: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Response object, with every field the typed client model requires."""
    echo = req.extra.get("echo") or {}
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "metadata": echo.get("metadata", {}),
        "model": req.model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": echo.get("reasoning"),
        "store": False,
        "temperature": echo.get("temperature", 1.0),
        "text": echo.get("text", {"format": {"type": "text"}}),
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": echo.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": echo.get("user"),
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def _reasoning_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    """A model's reasoning (litellm's ``reasoning_content``) as a reasoning item with a summary."""
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"type": "reasoning", "id": item_id, "summary": summary, "status": status}


def _call_item(req: ChatRequest, item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    """A function_call item, or a custom_tool_call for a tool the request declared as custom;
    a call to a tool declared in a namespace names it back with its namespace."""
    table = req.extra.get(TOOLS)
    namespace: str | None = None
    if isinstance(table, ToolTable):
        custom = name in table.custom
        if name in table.namespaced:
            namespace, name = table.namespaced[name]
    else:
        custom = False
    if custom:
        try:
            value = json.loads(arguments) if arguments else {}
        except ValueError:
            value = arguments
        text = value.get(CUSTOM_INPUT, "") if isinstance(value, dict) else str(value)
        item: dict[str, Any] = {
            "type": "custom_tool_call",
            "id": item_id,
            "call_id": call_id,
            "name": name,
            "input": text if isinstance(text, str) else dumps(text),
            "status": status,
        }
    else:
        item = {
            "type": "function_call",
            "id": item_id,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "status": status,
        }
    if namespace is not None:
        item["namespace"] = namespace
    return item


def render_response(req: ChatRequest, completion: Any) -> dict[str, Any]:
    """A canonical chat completion as a Responses ``Response``."""
    data = as_dict(completion)
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    message = choice.get("message") or {}
    status, incomplete = _status(choice.get("finish_reason"))
    item_status = "completed" if status == "completed" else "incomplete"
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if req.extra.get("reasoning_summary") and isinstance(reasoning, str) and reasoning:
        output.append(_reasoning_item(new_id("rs_"), reasoning, "completed"))
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(str(p.get("text", "")) for p in text if isinstance(p, Mapping))
    if text:
        output.append(_message_item(new_id("msg_"), text, item_status))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = dumps(arguments or {})
        output.append(
            _call_item(
                req,
                new_id("fc_"),
                call.get("id") or new_id("call_"),
                function.get("name", ""),
                arguments,
                "completed",
            )
        )
    return _response(req, new_id("resp_"), int(time.time()), status, output, _usage(data.get("usage")), incomplete)


# --------------------------------------------------------------------------- stream


class _StreamWriter:
    """Numbers the events of one streamed response and frames them as SSE.

    It is kept in ``req.extra[STREAM_STATE]`` so that :func:`stream_error_frame`,
    given the request, ends a broken stream with a ``response.failed`` that
    continues the numbering, names the same response and keeps its output.
    """

    def __init__(self, rid: str, created: int) -> None:
        self.rid = rid
        self.created = created
        self.sequence = 0
        self.output: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse_frame(kind, data)


#: Where :func:`render_events` leaves its :class:`_StreamWriter` in ``req.extra``.
STREAM_STATE = "responses.stream"


@dataclass(slots=True)
class _Item:
    """One output item while it streams: a message's text parts or a call's argument fragments."""

    index: int
    kind: str  # "reasoning" | "message" | "function_call" | "custom_tool_call"
    id: str
    call_id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)


class _Renderer:
    """The state of one streamed response: its items by output index, and which are still open."""

    def __init__(self, req: ChatRequest, out: _StreamWriter) -> None:
        self.req = req
        self.out = out
        self.items: list[_Item] = []
        self.done: dict[int, dict[str, Any]] = {}
        self.message: _Item | None = None  # the text item taking deltas, if any
        self.reasoning: _Item | None = None  # the reasoning item taking deltas, if any
        self.calls: dict[int, _Item] = {}  # canonical tool_calls index -> its item
        table = req.extra.get(TOOLS)
        self.custom = table.custom if isinstance(table, ToolTable) else set()

    def reason(self, delta: str) -> list[bytes]:
        out = self.out
        frames: list[bytes] = []
        item = self.reasoning
        if item is None:
            if self.message is not None:
                frames += self.close(self.message)
            item = self.reasoning = _Item(len(self.items), "reasoning", new_id("rs_"))
            self.items.append(item)
            added = _reasoning_item(item.id, "", "in_progress")
            frames.append(out.event("response.output_item.added", output_index=item.index, item=added))
            frames.append(
                out.event(
                    "response.reasoning_summary_part.added",
                    item_id=item.id,
                    output_index=item.index,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
        item.parts.append(delta)
        frames.append(
            out.event(
                "response.reasoning_summary_text.delta",
                item_id=item.id,
                output_index=item.index,
                summary_index=0,
                delta=delta,
            )
        )
        return frames

    def text(self, delta: str) -> list[bytes]:
        out = self.out
        frames: list[bytes] = []
        if self.reasoning is not None:
            frames += self.close(self.reasoning)
        item = self.message
        if item is None:
            item = self.message = _Item(len(self.items), "message", new_id("msg_"))
            self.items.append(item)
            added = _message_item(item.id, "", "in_progress")
            added["content"] = []
            frames.append(out.event("response.output_item.added", output_index=item.index, item=added))
            frames.append(
                out.event(
                    "response.content_part.added",
                    item_id=item.id,
                    output_index=item.index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            )
        item.parts.append(delta)
        frames.append(
            out.event(
                "response.output_text.delta",
                item_id=item.id,
                output_index=item.index,
                content_index=0,
                delta=delta,
                logprobs=[],
            )
        )
        return frames

    def call(self, call: Mapping[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        position = call.get("index", 0)
        function = call.get("function") or {}
        item = self.calls.get(position)
        if item is None:
            for before in (self.reasoning, self.message):  # they end where a call starts
                if before is not None:
                    frames += self.close(before)
            name = function.get("name") or ""
            kind = "custom_tool_call" if name in self.custom else "function_call"
            item = _Item(
                len(self.items),
                kind,
                new_id("ctc_" if kind == "custom_tool_call" else "fc_"),
                call.get("id") or new_id("call_"),
                name,
            )
            self.items.append(item)
            self.calls[position] = item
            added = _call_item(self.req, item.id, item.call_id, name, "", "in_progress")
            frames.append(self.out.event("response.output_item.added", output_index=item.index, item=added))
        fragment = function.get("arguments")
        if fragment:
            item.parts.append(fragment)
            if item.kind == "function_call":  # by item id: interleaved calls stay apart
                frames.append(
                    self.out.event(
                        "response.function_call_arguments.delta",
                        item_id=item.id,
                        output_index=item.index,
                        delta=fragment,
                    )
                )
        return frames

    def close(self, item: _Item, status: str = "completed") -> list[bytes]:
        out = self.out
        frames: list[bytes] = []
        index = item.index
        joined = "".join(item.parts)
        if item.kind == "reasoning":
            self.reasoning = None
            frames.append(
                out.event(
                    "response.reasoning_summary_text.done",
                    item_id=item.id,
                    output_index=index,
                    summary_index=0,
                    text=joined,
                )
            )
            frames.append(
                out.event(
                    "response.reasoning_summary_part.done",
                    item_id=item.id,
                    output_index=index,
                    summary_index=0,
                    part={"type": "summary_text", "text": joined},
                )
            )
            done = _reasoning_item(item.id, joined, "completed")
        elif item.kind == "message":
            self.message = None
            part = {"type": "output_text", "text": joined, "annotations": [], "logprobs": []}
            frames.append(
                out.event(
                    "response.output_text.done",
                    item_id=item.id,
                    output_index=index,
                    content_index=0,
                    text=joined,
                    logprobs=[],
                )
            )
            frames.append(
                out.event("response.content_part.done", item_id=item.id, output_index=index, content_index=0, part=part)
            )
            done = _message_item(item.id, joined, status)
        else:
            done = _call_item(self.req, item.id, item.call_id, item.name, joined, "completed")
            if done["type"] == "custom_tool_call":
                text = done["input"]
                frames.append(
                    out.event("response.custom_tool_call_input.delta", item_id=item.id, output_index=index, delta=text)
                )
                frames.append(
                    out.event("response.custom_tool_call_input.done", item_id=item.id, output_index=index, input=text)
                )
            else:
                frames.append(
                    out.event(
                        "response.function_call_arguments.done",
                        item_id=item.id,
                        output_index=index,
                        name=done["name"],
                        arguments=joined,
                    )
                )
        frames.append(out.event("response.output_item.done", output_index=index, item=done))
        self.done[index] = done
        out.output[:] = [self.done[i] for i in sorted(self.done)]
        return frames

    def finish(self, status: str) -> list[bytes]:
        frames: list[bytes] = []
        for item in self.items:
            if item.index not in self.done:
                frames += self.close(item, "completed" if status == "completed" else "incomplete")
        return frames


async def render_events(req: ChatRequest, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Canonical chunks as Responses SSE events, numbered from 0.

    ``response.created``, ``response.in_progress``; per output item
    ``output_item.added``, then for text ``content_part.added``,
    ``output_text.delta``..., ``output_text.done``, ``content_part.done``, and
    for a function call ``function_call_arguments.delta``...,
    ``function_call_arguments.done`` (custom tools: ``custom_tool_call_input``
    events, sent whole when the call is done); ``output_item.done``; and last
    ``response.completed``, or ``response.incomplete`` when the reply was cut
    at ``max_output_tokens``. A text item ends when a call starts; calls end
    with the reply, so fragments of parallel calls may interleave (each delta
    names its item) and none is lost.
    """
    rid, created = new_id("resp_"), int(time.time())
    out = _StreamWriter(rid, created)
    req.extra[STREAM_STATE] = out
    # The opening snapshots leave out the echoed tools: Codex sends ~30 kB of them on every call,
    # and the closing response.completed carries them anyway.
    opening = _response(req, rid, created, "in_progress", [], None)
    opening["tools"] = []
    yield out.event("response.created", response=opening)
    yield out.event("response.in_progress", response=opening)

    state = _Renderer(req, out)
    summaries = bool(req.extra.get("reasoning_summary"))
    finish: Any = None
    usage: Any = None
    async for raw in chunks:
        chunk = as_dict(raw)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") if summaries else None
            if reasoning and isinstance(reasoning, str):
                for frame in state.reason(reasoning):
                    yield frame
            text = delta.get("content")
            if text:
                for frame in state.text(text):
                    yield frame
            for call in delta.get("tool_calls") or ():
                for frame in state.call(call):
                    yield frame
    status, incomplete = _status(finish)
    for frame in state.finish(status):
        yield frame
    final = _response(req, rid, created, status, out.output, _usage(usage), incomplete)
    yield out.event("response.completed" if status == "completed" else "response.incomplete", response=final)


# --------------------------------------------------------------------------- errors


def error_body(kind: ErrorKind, message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    kind_type, code = ERROR_TYPES.get(kind, ("server_error", None))
    return {"error": {"message": message, "type": kind_type, "param": param, "code": code}}


def stream_error_frame(kind: ErrorKind, message: str, req: ChatRequest | None = None) -> bytes:
    """A ``response.failed`` event ending a stream that broke after it began.

    ``response.failed`` rather than ``error``: it is the terminal event that
    Codex, the Agents SDK and the ``openai`` stream helper all treat as the end
    of a failed response (Codex ignores ``error``). Given the request the stream
    was rendered for, it continues that stream's numbering and names its
    response; without, it starts a failed response of its own at sequence 0.
    """
    state = req.extra.get(STREAM_STATE) if req is not None else None
    if not isinstance(state, _StreamWriter):
        state = _StreamWriter(new_id("resp_"), int(time.time()))
    code = STREAM_ERROR_CODES.get(kind, "server_error")
    if req is not None:
        response = _response(req, state.rid, state.created, "failed", state.output, None)
    else:
        response = {
            "id": state.rid,
            "object": "response",
            "created_at": state.created,
            "status": "failed",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "model": "",
        }
    response["error"] = {"code": code, "message": message}
    return state.event("response.failed", response=response)


class OpenAIResponses:
    """The OpenAI Responses API, stateless; see the module docstring."""

    name = "openai.responses"

    def parse(self, body: Any) -> ChatRequest:
        return parse_responses_body(body)

    def render(self, req: ChatRequest, completion: dict[str, Any]) -> dict[str, Any]:
        return render_response(req, completion)

    def render_stream(self, req: ChatRequest, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        return render_events(req, chunks)

    def error(self, kind: ErrorKind, message: str, param: str | None = None) -> dict[str, Any]:
        return error_body(kind, message, param)

    def stream_error(self, kind: ErrorKind, message: str, req: ChatRequest | None = None) -> bytes:
        """``req``, an extension of the protocol: the request whose stream broke (see :func:`stream_error_frame`)."""
        return stream_error_frame(kind, message, req)


DIALECT = OpenAIResponses()
