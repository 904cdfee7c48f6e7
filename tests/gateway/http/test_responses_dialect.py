"""The OpenAI Responses dialect: translations, and round trips through the ``openai`` client and the Agents SDK.

The round trips serve the dialect's output from a tiny aiohttp server over
canned canonical replies (``dialect_server.py``) and assert on the clients' own
typed objects: ``Response``, its output items, the stream's events, and one
agent turn of the OpenAI Agents SDK with a function tool.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from openai.types.responses import Response, ResponseFunctionToolCall, ResponseOutputMessage

from fleet.gateway.http.dialect import BadRequest, ChatRequest, Dialect
from fleet.gateway.http.responses import DIALECT
from fleet.gateway.http.responses import TOOLS as TOOL_TABLE

from .dialect_server import Canned, DialectServer, chunks, completion, interleaved_calls


def test_satisfies_the_protocol() -> None:
    dialect: Dialect = DIALECT
    assert dialect.name == "openai.responses"


# ------------------------------------------------------------------ parse


def test_parse_string_input() -> None:
    req = DIALECT.parse({"model": "gpt-4o", "input": "hi", "instructions": "Be terse.", "max_output_tokens": 50})
    assert req.model == "gpt-4o"
    assert req.messages == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}]
    assert req.params == {"max_tokens": 50}
    assert req.extra["echo"]["instructions"] == "Be terse."


def test_parse_agents_sdk_history() -> None:
    """The items the Agents SDK sends back on its second turn: output message, call, call output, reasoning."""
    req = DIALECT.parse(
        {
            "model": "gpt-4o",
            "input": [
                {"role": "developer", "content": "rules"},
                {"content": "weather in Paris?", "role": "user"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
                },
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "noon"}],
                },
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "and this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "low"},
                    ],
                },
            ],
            "tools": [
                {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": True},
                {"type": "function", "name": "get_time", "description": "now", "parameters": None},
            ],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "low"},
            "temperature": 0.2,
        }
    )
    m = req.messages
    assert m[0] == {"role": "system", "content": "rules"}
    assert m[1] == {"role": "user", "content": "weather in Paris?"}
    assert m[2]["role"] == "assistant" and m[2]["content"] == "Checking."
    assert [c["id"] for c in m[2]["tool_calls"]] == ["call_1", "call_2"]
    assert m[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert m[3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert m[4] == {"role": "tool", "tool_call_id": "call_2", "content": "noon"}
    assert m[5]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"},
    }
    tools = req.params["tools"]
    assert tools[0] == {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": True},
    }
    assert tools[1]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert req.params["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert req.params["parallel_tool_calls"] is False
    assert req.params["temperature"] == 0.2


def test_call_output_images_follow_the_tool_messages() -> None:
    """OpenAI accepts images only from users: a call output's image rides in a user message after the outputs."""
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAA"}
    req = DIALECT.parse(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "look"},
                {"type": "function_call", "call_id": "a", "name": "shot", "arguments": "{}"},
                {"type": "function_call", "call_id": "b", "name": "shot", "arguments": "{}"},
                {
                    "type": "function_call_output",
                    "call_id": "a",
                    "output": [{"type": "input_text", "text": "ok"}, image],
                },
                {"type": "function_call_output", "call_id": "b", "output": "plain"},
            ],
        }
    )
    roles = [m["role"] for m in req.messages]
    assert roles == ["user", "assistant", "tool", "tool", "user"]
    assert req.messages[2]["content"].startswith("ok\n(1 attachment")
    assert req.messages[4]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}


def test_parse_text_format_json_schema() -> None:
    fmt = {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}
    req = DIALECT.parse({"model": "m", "input": "x", "text": {"format": fmt}})
    assert req.params["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }
    assert (
        "response_format"
        not in DIALECT.parse({"model": "m", "input": "x", "text": {"format": {"type": "text"}}}).params
    )


def test_parse_custom_tool_round_trip() -> None:
    """Codex's freeform tools: a function with one string argument, back as custom_tool_call."""
    req = DIALECT.parse(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "patch it"},
                {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
            ],
            "tools": [
                {"type": "custom", "name": "apply_patch", "description": "edit files", "format": {"type": "text"}}
            ],
        }
    )
    assert req.params["tools"][0]["function"]["parameters"]["required"] == ["input"]
    assert json.loads(req.messages[1]["tool_calls"][0]["function"]["arguments"]) == {"input": "*** Begin Patch"}
    out = DIALECT.render(req, completion(None, [("c2", "apply_patch", '{"input": "*** End Patch"}')], "tool_calls"))
    assert out["output"][0]["type"] == "custom_tool_call"
    assert out["output"][0]["input"] == "*** End Patch"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ("x", None, "JSON object"),
        ({"input": "x"}, "model", "model"),
        ({"model": "m"}, "input", "input"),
        ({"model": "m", "input": "x", "previous_response_id": "resp_1"}, "previous_response_id", "no responses"),
        ({"model": "m", "input": "x", "conversation": "conv_1"}, "conversation", "whole conversation"),
        ({"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}}, "prompt", "stored"),
        ({"model": "m", "input": "x", "background": True}, "background", ""),
        ({"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools[0].type", "required"),
        (
            {
                "model": "m",
                "input": "x",
                "tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}],
            },
            "tools[1].name",
            "twice",
        ),
        (
            {"model": "m", "input": "x", "tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "mcp"}]}]},
            "tools[0].tools[0]",
            "",
        ),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input[0]", "stored"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role", "role"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
            "",
        ),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens", ""),
        ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format", ""),
        (
            {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": "maybe"},
            "tool_choice",
            "",
        ),
        ({"model": "m", "instructions": "only this", "input": []}, "input", "no message"),
    ],
)
def test_parse_rejects_with_the_field(body: Any, param: str | None, words: str) -> None:
    with pytest.raises(BadRequest) as info:
        DIALECT.parse(body)
    assert info.value.param == param
    assert words in str(info.value)


def test_codex_namespaces_and_hosted_tools() -> None:
    """Codex's request: a namespace of sub-agent tools, web_search always offered, developer messages."""
    fn = {"type": "object", "properties": {"target": {"type": "string"}}}
    body = {
        "model": "gpt-4o",
        "input": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "developer",
                "content": [{"type": "input_text", "text": "rules"}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "spawn one"}]},
            {
                "type": "function_call",
                "call_id": "c0",
                "name": "close_agent",
                "namespace": "multi_agent_v1",
                "arguments": '{"target":"a1"}',
            },
            {"type": "function_call_output", "call_id": "c0", "output": "closed"},
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}, "strict": False},
            {"type": "function", "name": "close_agent", "parameters": fn},
            {
                "type": "namespace",
                "name": "multi_agent_v1",
                "description": "sub-agents",
                "tools": [
                    {"type": "function", "name": "spawn_agent", "parameters": fn},
                    {"type": "function", "name": "close_agent", "parameters": fn},
                ],
            },
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "k",
        "client_metadata": {"x": "y"},
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": True,
    }
    req = DIALECT.parse(body)
    names = [t["function"]["name"] for t in req.params["tools"]]
    assert names == ["exec_command", "close_agent", "spawn_agent", "multi_agent_v1__close_agent"]
    table = req.extra[TOOL_TABLE]
    assert table.dropped == ["web_search"]
    assert req.messages[0] == {"role": "system", "content": "rules"}
    assert req.messages[2]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__close_agent"
    out = DIALECT.render(
        req,
        completion(
            None, [("c1", "spawn_agent", '{"target":"x"}'), ("c2", "multi_agent_v1__close_agent", "{}")], "tool_calls"
        ),
    )
    calls = [Response.model_validate(out).output[i] for i in (0, 1)]
    assert [(c.name, c.namespace) for c in calls] == [
        ("spawn_agent", "multi_agent_v1"),
        ("close_agent", "multi_agent_v1"),
    ]  # type: ignore[union-attr]


def test_parse_accepts_store() -> None:
    assert DIALECT.parse({"model": "m", "input": "x", "store": True}).messages == [{"role": "user", "content": "x"}]


# ------------------------------------------------------------------ render


REQ = DIALECT.parse({"model": "gpt-4o", "input": "hi", "metadata": {"k": "v"}})


def test_render_text_validates_as_the_typed_model() -> None:
    body = DIALECT.render(REQ, completion("Hi!", prompt_tokens=9, completion_tokens=3))
    resp = Response.model_validate(body)  # strict validation, not the client's lenient construct
    assert resp.id.startswith("resp_") and resp.object == "response" and resp.status == "completed"
    assert resp.output_text == "Hi!"
    assert resp.model == "gpt-4o" and resp.metadata == {"k": "v"} and resp.store is False
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (9, 3, 12)


def test_render_reasoning_summary_only_when_asked() -> None:
    done = completion("42.")
    done["choices"][0]["message"]["reasoning_content"] = "6 times 7"
    asked = DIALECT.parse({"model": "m", "input": "6*7?", "reasoning": {"effort": "low", "summary": "auto"}})
    resp = Response.model_validate(DIALECT.render(asked, done))
    assert resp.output[0].type == "reasoning" and resp.output[0].summary[0].text == "6 times 7"  # type: ignore[union-attr]
    assert resp.output_text == "42."
    plain = DIALECT.render(DIALECT.parse({"model": "m", "input": "6*7?"}), done)
    assert [item["type"] for item in plain["output"]] == ["message"]


def test_render_length_is_incomplete() -> None:
    resp = Response.model_validate(DIALECT.render(REQ, completion("cut", finish="length")))
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None and resp.incomplete_details.reason == "max_output_tokens"


def test_render_tool_calls() -> None:
    body = DIALECT.render(REQ, completion("Let me look.", [("call_7", "get_weather", '{"city":"Rome"}')], "tool_calls"))
    resp = Response.model_validate(body)
    assert isinstance(resp.output[0], ResponseOutputMessage)
    call = resp.output[1]
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.call_id, call.name, json.loads(call.arguments)) == ("call_7", "get_weather", {"city": "Rome"})
    assert call.id is not None and call.id.startswith("fc_")


async def _events(req: ChatRequest, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def gen() -> AsyncIterator[dict[str, Any]]:
        for item in items:
            yield item

    out = []
    async for frame in DIALECT.render_stream(req, gen()):
        event, data = frame.decode().strip().split("\n")
        parsed = json.loads(data.removeprefix("data: "))
        assert event.removeprefix("event: ") == parsed["type"]
        out.append(parsed)
    return out


async def test_stream_event_sequence() -> None:
    events = await _events(REQ, chunks(["Hel", "lo"], [("call_1", "f", ['{"a":', "1}"])], "tool_calls"))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[6]["text"] == "Hello"
    assert events[12]["arguments"] == '{"a":1}' and events[12]["output_index"] == 1
    final = Response.model_validate(events[-1]["response"])
    assert final.output_text == "Hello" and final.usage is not None and final.usage.output_tokens == 7
    assert events[0]["response"]["id"] == final.id
    assert events[0]["response"]["tools"] == [] and final.tools == []  # no tools in REQ


async def test_stream_echoes_tools_once_at_the_end() -> None:
    req = DIALECT.parse({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}], "stream": True})
    events = await _events(req, chunks(["ok"]))
    assert events[0]["response"]["tools"] == [] and events[1]["response"]["tools"] == []
    assert events[-1]["response"]["tools"] == [{"type": "function", "name": "f"}]


async def test_stream_empty_and_cut() -> None:
    events = await _events(REQ, chunks([], finish="length"))
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.incomplete"]
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_error_shapes() -> None:
    assert DIALECT.error("invalid_request", "bad", "input") == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "input", "code": None}
    }
    assert DIALECT.error("budget", "spent")["error"]["code"] == "insufficient_quota"


# ------------------------------------------------------------------ round trips through the clients


@pytest.fixture(scope="module")
def server() -> Iterator[DialectServer]:
    srv = DialectServer(DIALECT, ("/v1/responses",)).start()
    yield srv
    srv.stop()


def _client(server: DialectServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="fleet-token", max_retries=0)


TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    }
]


def test_client_plain(server: DialectServer) -> None:
    server.canned = [Canned(completion=completion("Hello from the fleet.", prompt_tokens=11, completion_tokens=5))]
    resp = _client(server).responses.create(model="gpt-4o", input="hi", instructions="Be kind.")
    assert isinstance(resp, Response)
    assert resp.output_text == "Hello from the fleet."
    assert resp.status == "completed"
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (11, 5)
    assert server.requests[-1].messages[0] == {"role": "system", "content": "Be kind."}
    assert server.headers[-1]["authorization"] == "Bearer fleet-token"


def test_client_parse_structured_output(server: DialectServer) -> None:
    """``responses.parse(text_format=Model)`` sends text.format json_schema; the JSON reply parses."""
    import pydantic

    class Verdict(pydantic.BaseModel):
        severity: str
        score: int

    server.canned = [Canned(completion=completion('{"severity": "low", "score": 2}'))]
    resp = _client(server).responses.parse(model="gpt-4o", input="rate", text_format=Verdict)
    assert resp.output_parsed == Verdict(severity="low", score=2)
    sent = server.requests[-1].params["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Verdict" and sent["json_schema"]["strict"]


def test_client_tools_then_output(server: DialectServer) -> None:
    server.canned = [
        Canned(completion=completion(None, [("call_9", "get_weather", '{"city":"Paris"}')], "tool_calls")),
        Canned(completion=completion("Sunny in Paris.")),
    ]
    server.requests.clear()
    client = _client(server)
    first = client.responses.create(model="gpt-4o", input="weather?", tools=TOOLS)
    call = first.output[0]
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.call_id, call.name, json.loads(call.arguments)) == ("call_9", "get_weather", {"city": "Paris"})
    second = client.responses.create(
        model="gpt-4o",
        tools=TOOLS,
        input=[
            {"role": "user", "content": "weather?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert second.output_text == "Sunny in Paris."
    sent = server.requests[-1].messages
    assert sent[1]["tool_calls"][0]["id"] == "call_9"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}


def test_client_stream_raw_events(server: DialectServer) -> None:
    server.canned = [
        Canned(chunks=chunks(["It is ", "sunny."], [("call_5", "get_weather", ['{"ci', 'ty":"Oslo"}'])], "tool_calls"))
    ]
    events = list(_client(server).responses.create(model="gpt-4o", input="weather?", tools=TOOLS, stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.function_call_arguments.done" in types
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "It is sunny."
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "It is sunny."
    assert isinstance(final.output[1], ResponseFunctionToolCall) and final.output[1].arguments == '{"city":"Oslo"}'


def test_client_stream_reasoning_summary(server: DialectServer) -> None:
    """Codex asks for reasoning summaries; a reasoning model's reasoning_content streams as one."""
    canned = chunks(["42."])
    canned[1:1] = [
        {**canned[0], "choices": [{"index": 0, "delta": {"reasoning_content": part}, "finish_reason": None}]}
        for part in ("6 times ", "7")
    ]
    server.canned = [Canned(chunks=canned)]
    with _client(server).responses.stream(
        model="gpt-4o", input="6*7?", reasoning={"effort": "low", "summary": "auto"}
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds and "response.reasoning_summary_part.done" in kinds
    assert kinds.index("response.reasoning_summary_part.done") < kinds.index("response.output_text.delta")
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text == "6 times 7"  # type: ignore[union-attr]
    assert final.output_text == "42."


def test_interleaved_parallel_calls_lose_nothing(server: DialectServer) -> None:
    server.canned = [Canned(chunks=interleaved_calls())]
    with _client(server).responses.stream(model="gpt-4o", input="x", tools=TOOLS) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    args = [json.loads(item.arguments) for item in final.output]  # type: ignore[union-attr]
    assert args == [{"city": "Oslo"}, {"city": "Rome"}]
    assert [item.call_id for item in final.output] == ["call_a", "call_b"]  # type: ignore[union-attr]


def test_client_stream_helper_accumulates(server: DialectServer) -> None:
    """``responses.stream`` checks event order as it builds its snapshot: a misplaced event fails it."""
    server.canned = [
        Canned(chunks=chunks(["a", "b"], [("call_1", "get_weather", ['{"city":', '"Rome"}'])], "tool_calls"))
    ]
    with _client(server).responses.stream(model="gpt-4o", input="x", tools=TOOLS) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "ab"
    call = final.output[1]
    assert isinstance(call, ResponseFunctionToolCall) and json.loads(call.arguments) == {"city": "Rome"}


async def test_async_client_stream(server: DialectServer) -> None:
    server.canned = [Canned(chunks=chunks(["x", "y"], prompt_tokens=3, completion_tokens=2))]
    client = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="t", max_retries=0)
    stream = await client.responses.create(model="gpt-4o", input="x", stream=True)
    events = [e async for e in stream]
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.total_tokens == 5  # type: ignore[union-attr]
    await client.close()


@pytest.mark.parametrize(
    ("kind", "exc"),
    [
        ("authentication", openai.AuthenticationError),
        ("permission", openai.PermissionDeniedError),
        ("not_found", openai.NotFoundError),
        ("too_large", openai.APIStatusError),
        ("rate_limit", openai.RateLimitError),
        ("budget", openai.RateLimitError),
        ("provider", openai.InternalServerError),
    ],
)
def test_client_typed_errors(server: DialectServer, kind: Any, exc: type[Exception]) -> None:
    server.canned = [Canned(error=(kind, f"refused: {kind}"))]
    with pytest.raises(exc) as info:
        _client(server).responses.create(model="gpt-4o", input="x")
    assert f"refused: {kind}" in str(info.value)


def test_client_bad_request(server: DialectServer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _client(server).responses.create(model="gpt-4o", input="x", previous_response_id="resp_1")
    assert info.value.param == "previous_response_id"
    assert "keeps no responses" in info.value.message


def test_client_mid_stream_failure(server: DialectServer) -> None:
    """A stream that breaks ends in ``response.failed``, numbered on from the stream, with its output so far."""
    server.canned = [Canned(chunks=chunks(["partial"]), error=("provider", "x"), stream_error_after=2)]
    events = list(_client(server).responses.create(model="gpt-4o", input="x", stream=True))
    failed = events[-1]
    assert failed.type == "response.failed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert failed.response.id == events[0].response.id  # type: ignore[union-attr]
    assert failed.response.status == "failed"  # type: ignore[union-attr]
    assert failed.response.error is not None and "mid-stream" in failed.response.error.message  # type: ignore[union-attr]


def test_stream_error_without_the_request() -> None:
    frame = DIALECT.stream_error("budget", "spent").decode()
    data = json.loads(frame.split("data: ", 1)[1])
    assert frame.startswith("event: response.failed\n")
    assert data["response"]["error"] == {"code": "insufficient_quota", "message": "spent"}


async def test_agents_sdk_raises_on_a_failed_stream(server: DialectServer) -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
    from agents.exceptions import AgentsException

    set_tracing_disabled(True)
    server.requests.clear()
    server.canned = [Canned(chunks=chunks(["partial"]), error=("provider", "x"), stream_error_after=2)]
    client = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="t", max_retries=0)
    agent = Agent(name="a", model=OpenAIResponsesModel(model="gpt-4o", openai_client=client))
    streamed = Runner.run_streamed(agent, "hi")
    with pytest.raises(AgentsException, match="mid-stream"):
        async for _ in streamed.stream_events():
            pass
    await client.close()


# ------------------------------------------------------------------ the OpenAI Agents SDK


async def test_agents_sdk_turn_with_a_function_tool(server: DialectServer) -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    server.requests.clear()
    server.canned = [
        Canned(completion=completion(None, [("call_1", "get_weather", '{"city":"Lyon"}')], "tool_calls")),
        Canned(completion=completion("It is sunny in Lyon.")),
    ]
    client = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="t", max_retries=0)
    agent = Agent(
        name="forecaster",
        instructions="Answer with the tool.",
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
        tools=[get_weather],
    )
    result = await Runner.run(agent, "Weather in Lyon?")
    assert result.final_output == "It is sunny in Lyon."
    assert calls == ["Lyon"]
    second = server.requests[-1].messages
    assert second[0] == {"role": "system", "content": "Answer with the tool."}
    assert {"role": "tool", "tool_call_id": "call_1", "content": "sunny in Lyon"} in second
    assert result.context_wrapper.usage.output_tokens == 14  # two calls, 7 each

    # the same turn, streamed
    server.requests.clear()
    server.canned = [
        Canned(chunks=chunks([], [("call_2", "get_weather", ['{"city":', '"Nice"}'])], "tool_calls")),
        Canned(chunks=chunks(["Sunny ", "in Nice."])),
    ]
    streamed = Runner.run_streamed(agent, "Weather in Nice?")
    kinds = [event.type async for event in streamed.stream_events()]
    assert streamed.final_output == "Sunny in Nice."
    assert calls == ["Lyon", "Nice"]
    assert "run_item_stream_event" in kinds
    await client.close()
