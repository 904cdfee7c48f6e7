"""The Anthropic Messages dialect: translations, and round trips through the official ``anthropic`` client.

The round trips serve the dialect's output from a tiny aiohttp server over
canned canonical replies (``dialect_server.py``) and assert on the client's own
typed objects, so a frame the SDK could not parse fails here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest

from fleet.gateway.http.anthropic import DIALECT, count_tokens, estimate_tokens
from fleet.gateway.http.dialect import BadRequest, ChatRequest, Dialect

from .dialect_server import Canned, DialectServer, chunks, completion, interleaved_calls

PATHS = ("/v1/messages", "/v1/messages/count_tokens")


def test_satisfies_the_protocol() -> None:
    dialect: Dialect = DIALECT
    assert dialect.name == "anthropic.messages"


# ------------------------------------------------------------------ parse


def _body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(over)
    return body


def test_parse_minimal() -> None:
    req = DIALECT.parse(_body())
    assert req.model == "claude-sonnet-4-5"
    assert req.messages == [{"role": "user", "content": "hi"}]
    assert req.params == {"max_tokens": 256}
    assert req.stream is False


def test_parse_claude_code_shape() -> None:
    """System as cache_control'd blocks, thinking, tool history, server tools, betas' extra fields."""
    body = _body(
        system=[
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        ],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Running ls."},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a\nb"}]},
                    {"type": "text", "text": "<system-reminder>be brief</system-reminder>"},
                    {"type": "text", "text": "now count them"},
                ],
            },
        ],
        tools=[
            {
                "name": "Bash",
                "description": "Run a command",
                "input_schema": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                },
            },
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ],
        tool_choice={"type": "auto"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        metadata={"user_id": "user_abc"},
        temperature=1,
        top_k=5,
        context_management={"edits": []},
        stream=True,
    )
    req = DIALECT.parse(body)
    assert req.stream is True
    assert req.messages[0] == {
        "role": "system",
        "content": "x-anthropic-billing-header: cc_version=2.1\nYou are Claude Code.",
    }
    assert req.messages[1] == {"role": "user", "content": "list files"}
    assert req.messages[2] == {
        "role": "assistant",
        "content": "Running ls.",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls"}'}}
        ],
    }
    assert req.messages[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "a\nb"}
    assert req.messages[4]["role"] == "user"
    assert [p["text"] for p in req.messages[4]["content"]] == [
        "<system-reminder>be brief</system-reminder>",
        "now count them",
    ]
    assert [t["function"]["name"] for t in req.params["tools"]] == ["Bash"]  # the server tool is dropped
    assert req.params["tools"][0]["function"]["parameters"]["required"] == ["command"]
    assert req.params["tool_choice"] == "auto"
    assert req.extra["metadata"] == {"user_id": "user_abc"} and "user" not in req.params
    assert req.params["temperature"] == 1
    assert "top_k" not in req.params and "thinking" not in req.params


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}}),
    ],
)
def test_parse_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    req = DIALECT.parse(_body(tools=tools, tool_choice=choice))
    assert req.params["tool_choice"] == expected


def test_parse_drops_turns_that_were_only_thinking() -> None:
    req = DIALECT.parse(
        _body(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "...", "signature": "s"}]},
                {"role": "user", "content": "b"},
            ]
        )
    )
    assert [m["role"] for m in req.messages] == ["user", "user"]


def test_parse_disable_parallel_and_stops() -> None:
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    req = DIALECT.parse(
        _body(tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True}, stop_sequences=["END"])
    )
    assert req.params["parallel_tool_calls"] is False
    assert req.params["stop"] == ["END"]
    assert req.extra["stop_sequences"] == ["END"]


def test_parse_images_and_errors_in_tool_results() -> None:
    req = DIALECT.parse(
        _body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                        {"type": "text", "text": "what is this?"},
                    ],
                },
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True}],
                },
            ]
        )
    )
    assert req.messages[0]["content"][0] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}
    assert req.messages[1]["content"] is None
    assert req.messages[2] == {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"}


def test_tool_result_images_follow_the_tool_messages() -> None:
    """Claude Code's Read returns images in tool results; OpenAI accepts images only from users."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}
    req = DIALECT.parse(
        _body(
            messages=[
                {"role": "user", "content": "read both"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t1", "name": "Read", "input": {}},
                        {"type": "tool_use", "id": "t2", "name": "Read", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": [image]},
                        {"type": "tool_result", "tool_use_id": "t2", "content": "text file"},
                        {"type": "text", "text": "what do you see?"},
                    ],
                },
            ]
        )
    )
    assert [m["role"] for m in req.messages] == ["user", "assistant", "tool", "tool", "user"]
    assert req.messages[2]["content"] == "(1 attachment(s) follow in the next user message)"
    last = req.messages[4]["content"]
    assert last[0] == {"type": "text", "text": "Attachments of tool result t1:"}
    assert last[1]["type"] == "image_url" and last[2] == {"type": "text", "text": "what do you see?"}


def test_parse_search_result_and_document_blocks() -> None:
    req = DIALECT.parse(
        _body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "search_result",
                            "title": "Docs",
                            "source": "https://example.org/d",
                            "content": [{"type": "text", "text": "the answer is 4"}],
                        },
                        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
                    ],
                }
            ]
        )
    )
    texts = [p["text"] for p in req.messages[0]["content"]]
    assert texts == ["Docs (https://example.org/d)\nthe answer is 4", "notes"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([1, 2], None),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages.0.content.0.type",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "f"}]},
            "tools.0.input_schema",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": {"type": "x"},
            },
            "tool_choice.type",
        ),
    ],
)
def test_parse_rejects_with_the_field(body: Any, param: str | None) -> None:
    with pytest.raises(BadRequest) as info:
        DIALECT.parse(body)
    assert info.value.param == param


# ------------------------------------------------------------------ render


REQ = ChatRequest(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])


def test_render_text() -> None:
    msg = DIALECT.render(REQ, completion("Hi!", prompt_tokens=9, completion_tokens=3))
    assert msg["id"].startswith("msg_")
    assert msg["type"] == "message" and msg["role"] == "assistant" and msg["model"] == "claude-sonnet-4-5"
    assert msg["content"] == [{"type": "text", "text": "Hi!"}]
    assert msg["stop_reason"] == "end_turn"
    assert msg["usage"]["input_tokens"] == 9 and msg["usage"]["output_tokens"] == 3


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_tokens"), ("stop", "end_turn"), ("content_filter", "refusal")]
)
def test_render_stop_reasons(finish: str, reason: str) -> None:
    assert DIALECT.render(REQ, completion("x", finish=finish))["stop_reason"] == reason


def test_render_tool_use_keeps_bad_arguments() -> None:
    msg = DIALECT.render(
        REQ, completion(None, [("call_1", "Bash", '{"command": "ls"}'), ("call_2", "f", "not json")], "tool_calls")
    )
    assert msg["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}},
        {"type": "tool_use", "id": "call_2", "name": "f", "input": {"_raw_arguments": "not json"}},
    ]
    assert msg["stop_reason"] == "tool_use"


def test_render_reasoning_as_thinking_only_when_asked() -> None:
    done = completion("42.")
    done["choices"][0]["message"]["reasoning_content"] = "6 times 7"
    asked = DIALECT.parse(_body(thinking={"type": "enabled", "budget_tokens": 1024}))
    assert DIALECT.render(asked, done)["content"] == [
        {"type": "thinking", "thinking": "6 times 7", "signature": ""},
        {"type": "text", "text": "42."},
    ]
    assert DIALECT.render(DIALECT.parse(_body()), done)["content"] == [{"type": "text", "text": "42."}]
    omitted = DIALECT.parse(_body(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"}))
    assert DIALECT.render(omitted, done)["content"] == [{"type": "text", "text": "42."}]  # what Claude Code asks


def test_render_cached_tokens_are_not_input_tokens() -> None:
    done = completion("x", prompt_tokens=100)
    done["usage"]["prompt_tokens_details"] = {"cached_tokens": 60}
    usage = DIALECT.render(REQ, done)["usage"]
    assert usage["input_tokens"] == 40 and usage["cache_read_input_tokens"] == 60


async def _frames(req: ChatRequest, items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    async def gen() -> AsyncIterator[dict[str, Any]]:
        for item in items:
            yield item

    out = []
    async for frame in DIALECT.render_stream(req, gen()):
        text = frame.decode()
        assert text.endswith("\n\n")
        event, data = text.strip().split("\n")
        out.append((event.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


async def test_stream_event_sequence() -> None:
    frames = await _frames(REQ, chunks(["Hel", "lo"], [("call_1", "Bash", ['{"com', 'mand":"ls"}'])], "tool_calls"))
    assert [e for e, _ in frames] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(e == d["type"] for e, d in frames)
    assert frames[6][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}}
    assert frames[6][1]["index"] == 1
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert frames[-2][1]["usage"]["output_tokens"] == 7 and frames[-2][1]["usage"]["input_tokens"] == 12


async def test_stream_empty_reply_is_still_well_formed() -> None:
    frames = await _frames(REQ, [])
    assert [e for e, _ in frames] == ["message_start", "ping", "message_delta", "message_stop"]


def test_count_tokens_default_and_pluggable() -> None:
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hello " * 30}]}
    estimated = count_tokens(body)["input_tokens"]
    assert estimated >= len("hello " * 30) / 4  # errs high
    seen: dict[str, Any] = {}

    def counter(*, model: str, messages: list[dict[str, Any]], tools: Any) -> int:
        seen.update(model=model, messages=messages, tools=tools)
        return 42

    assert DIALECT.count_tokens(body, counter) == {"input_tokens": 42}
    assert seen["model"] == "claude-sonnet-4-5" and seen["messages"][0]["role"] == "user"
    assert estimate_tokens(model="m", messages=[{"role": "user", "content": ""}], tools=None) > 0
    with pytest.raises(BadRequest):
        count_tokens({"model": "m"})


def test_error_shapes() -> None:
    assert DIALECT.error("permission", "no") == {
        "type": "error",
        "error": {"type": "permission_error", "message": "no"},
    }
    assert DIALECT.error("too_large", "big")["error"]["type"] == "request_too_large"
    assert DIALECT.error("unavailable", "later")["error"]["type"] == "overloaded_error"
    frame = DIALECT.stream_error("provider", "down").decode()
    assert frame.startswith("event: error\ndata: ") and frame.endswith("\n\n")


# ------------------------------------------------------------------ round trips through the SDK


@pytest.fixture(scope="module")
def server() -> Iterator[DialectServer]:
    srv = DialectServer(DIALECT, PATHS).start()
    yield srv
    srv.stop()


def _client(server: DialectServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="fleet-token", max_retries=0)


TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def test_sdk_plain(server: DialectServer) -> None:
    server.canned = [Canned(completion=completion("Hello from the fleet.", prompt_tokens=11, completion_tokens=5))]
    msg = _client(server).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system=[{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hi"}],
    )
    assert isinstance(msg, anthropic.types.Message)
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello from the fleet."
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (11, 5)
    assert server.requests[-1].messages[0] == {"role": "system", "content": "Be kind."}
    # This SDK (2.x) sends the key as a bearer token; Claude Code and 0.x SDKs send x-api-key.
    sent = server.headers[-1]
    assert sent.get("x-api-key") == "fleet-token" or sent.get("authorization") == "Bearer fleet-token"


def test_sdk_parse_structured_output(server: DialectServer) -> None:
    """``messages.parse(output_format=Model)`` sends ``output_config.format``; the JSON reply parses."""
    import pydantic

    class Verdict(pydantic.BaseModel):
        severity: str
        score: int

    server.canned = [Canned(completion=completion('{"severity": "high", "score": 7}'))]
    msg = _client(server).messages.parse(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "rate"}], output_format=Verdict
    )
    assert msg.parsed_output == Verdict(severity="high", score=7)
    sent = server.requests[-1].params["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["properties"]["score"]["type"] == "integer"


def test_sdk_tool_use_then_result(server: DialectServer) -> None:
    server.canned = [
        Canned(completion=completion("Let me check.", [("toolu_9", "get_weather", '{"city":"Paris"}')], "tool_calls")),
        Canned(completion=completion("Sunny in Paris.")),
    ]
    client = _client(server)
    server.requests.clear()
    first = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "weather?"}]
    )
    assert first.stop_reason == "tool_use"
    use = first.content[1]
    assert isinstance(use, anthropic.types.ToolUseBlock)
    assert (use.id, use.name, use.input) == ("toolu_9", "get_weather", {"city": "Paris"})
    second = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
        ],
    )
    assert second.content[0].text == "Sunny in Paris."
    canonical = server.requests[-1].messages
    assert canonical[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert canonical[2] == {"role": "tool", "tool_call_id": "toolu_9", "content": "sunny"}


def test_sdk_stream_text_and_tool(server: DialectServer) -> None:
    server.canned = [
        Canned(
            chunks=chunks(
                ["It is ", "sunny."],
                [("toolu_5", "get_weather", ['{"ci', 'ty": "Oslo"}'])],
                "tool_calls",
                prompt_tokens=20,
                completion_tokens=9,
            )
        )
    ]
    with _client(server).messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "weather?"}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "It is sunny."
    assert final.content[0].text == "It is sunny."
    assert final.content[1].type == "tool_use" and final.content[1].input == {"city": "Oslo"}
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (20, 9)


def test_sdk_stream_reasoning_as_a_thinking_block(server: DialectServer) -> None:
    reasoning = chunks(["The answer ", "is 42."])
    reasoning[1:1] = [
        {**reasoning[0], "choices": [{"index": 0, "delta": {"reasoning_content": part}, "finish_reason": None}]}
        for part in ("6 times ", "7")
    ]
    server.canned = [Canned(chunks=reasoning)]
    with _client(server).messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "6*7?"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    assert final.content[0].type == "thinking" and final.content[0].thinking == "6 times 7"
    assert final.content[1].type == "text" and final.content[1].text == "The answer is 42."


def test_sdk_stream_interleaved_parallel_calls_lose_nothing(server: DialectServer) -> None:
    """Blocks are sequential; a late fragment of an earlier call is sent to that call's index."""
    server.canned = [Canned(chunks=interleaved_calls())]
    with _client(server).messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        final = stream.get_final_message()
    assert [b.input for b in final.content] == [{"city": "Oslo"}, {"city": "Rome"}]  # type: ignore[union-attr]
    assert [b.id for b in final.content] == ["call_a", "call_b"]  # type: ignore[union-attr]


async def test_async_sdk_plain_and_stream(server: DialectServer) -> None:
    server.canned = [Canned(completion=completion("async hi"))]
    client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key="t", max_retries=0)
    msg = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert msg.content[0].text == "async hi"
    server.canned = [Canned(chunks=chunks(["a", "b", "c"], finish="length"))]
    events = []
    async with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=3, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        async for event in stream:
            events.append(event.type)
        final = await stream.get_final_message()
    assert final.content[0].text == "abc" and final.stop_reason == "max_tokens"
    assert events[0] == "message_start" and events[-1] == "message_stop"
    await client.close()


def test_sdk_raw_stream_events(server: DialectServer) -> None:
    """``stream=True`` on create: the raw event objects, typed by the SDK."""
    server.canned = [Canned(chunks=chunks(["x"]))]
    events = list(
        _client(server).messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert isinstance(events[0], anthropic.types.RawMessageStartEvent)
    assert isinstance(events[-2], anthropic.types.RawMessageDeltaEvent)
    assert isinstance(events[-1], anthropic.types.RawMessageStopEvent)


@pytest.mark.parametrize(
    ("kind", "exc"),
    [
        ("authentication", anthropic.AuthenticationError),
        ("permission", anthropic.PermissionDeniedError),
        ("not_found", anthropic.NotFoundError),
        ("too_large", anthropic.APIStatusError),
        ("rate_limit", anthropic.RateLimitError),
        ("budget", anthropic.RateLimitError),
        ("provider", anthropic.InternalServerError),
    ],
)
def test_sdk_typed_errors(server: DialectServer, kind: Any, exc: type[Exception]) -> None:
    server.canned = [Canned(error=(kind, f"refused: {kind}"))]
    with pytest.raises(exc) as info:
        _client(server).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert f"refused: {kind}" in str(info.value)
    assert info.value.body["error"]["message"] == f"refused: {kind}"  # type: ignore[attr-defined]


def test_sdk_bad_request(server: DialectServer) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        _client(server).messages.create(model="m", max_tokens=5, messages=[{"role": "robot", "content": "x"}])  # type: ignore[list-item,misc]
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "messages.0.role" in info.value.message


def test_sdk_mid_stream_error(server: DialectServer) -> None:
    server.canned = [Canned(chunks=chunks(["partial"]), error=("provider", "x"), stream_error_after=2)]
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        _client(server).messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]) as stream,
    ):
        for _ in stream:
            pass
    assert "mid-stream" in str(info.value)


def test_sdk_count_tokens(server: DialectServer) -> None:
    """The SDK's count_tokens call (no max_tokens) is answered by :func:`count_tokens` as the server will."""
    client = _client(server)
    small = client.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "count me"}])
    assert isinstance(small, anthropic.types.MessageTokensCount) and small.input_tokens > 0
    big = client.messages.count_tokens(
        model="claude-sonnet-4-5",
        system="You are terse.",
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "count me " * 100}],
    )
    assert big.input_tokens > small.input_tokens + 100
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="claude-sonnet-4-5", messages=[])
