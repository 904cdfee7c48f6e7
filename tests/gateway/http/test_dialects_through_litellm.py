"""The dialects against the real litellm path: what parse() produces is accepted by litellm and reaches
an OpenAI-compatible upstream intact, and what litellm gives back (dicts of its own chunk and response
objects, as the gateway yields them) renders into something the official clients parse.

The upstream is a scripted loopback server that answers with a tool call, in full or streamed in the
OpenAI wire format; the rendered replies are then served to the ``anthropic`` and ``openai`` clients
from :class:`DialectServer`. Marked ``litellm`` (one shared import).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from fleet.gateway import Gateway, LiteLLMProvider
from fleet.gateway.http import anthropic as messages_dialect
from fleet.gateway.http import responses as responses_dialect

from ..helpers import LoopbackOpenAI, Records, make_policy
from .dialect_server import Canned, DialectServer

pytestmark = pytest.mark.litellm

POLICY = make_policy(llm={"model": "openai/gpt-4o-mini", "max_tokens": 1000})
MODEL = "openai/gpt-4o-mini"


class ScriptedUpstream(LoopbackOpenAI):
    """An OpenAI Chat Completions server that says some text and calls ``get_weather``
    (the loopback server of the gateway's tests, with its own answers)."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        base = {"id": "chatcmpl-up", "created": 1_700_000_000, "model": "gpt-4o-mini"}
        usage = {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43}
        call = {
            "id": "call_up1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        }
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": "Checking Oslo.",
                "reasoning_content": "Oslo is asked; call the tool.",
                "tool_calls": [call],
            }
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        deltas: list[dict[str, Any]] = [
            {"role": "assistant", "content": ""},
            {"reasoning_content": "Oslo is asked; "},
            {"reasoning_content": "call the tool."},
            {"content": "Checking "},
            {"content": "Oslo."},
            {"tool_calls": [{"index": 0, **call, "function": {"name": "get_weather", "arguments": ""}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]},
        ]
        for delta in deltas:
            chunk = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
        }
        await resp.write(f"data: {json.dumps(end)}\n\n".encode())
        last = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        await resp.write(f"data: {json.dumps(last)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


@pytest.fixture
def gateway(litellm_loaded: ModuleType, records: Records) -> Gateway:
    return Gateway(provider=LiteLLMProvider(demo_latency_s=0), recorder=records, environ={})


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    server = ScriptedUpstream()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[DialectServer]:
    srv = DialectServer(messages_dialect.DIALECT, ("/v1/messages",)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def responses_server() -> Iterator[DialectServer]:
    srv = DialectServer(responses_dialect.DIALECT, ("/v1/responses",)).start()
    yield srv
    srv.stop()


CLAUDE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 512,
    "system": [{"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "use the tool", "signature": "s"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "And Oslo?"},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "metadata": {"user_id": "user_x"},
    "stream": False,
}


def _upstream_params(upstream: ScriptedUpstream, params: dict[str, Any]) -> dict[str, Any]:
    return {**params, "api_base": upstream.api_base, "api_key": "test"}


async def test_anthropic_body_through_litellm(
    gateway: Gateway, upstream: ScriptedUpstream, anthropic_server: DialectServer
) -> None:
    req = messages_dialect.DIALECT.parse(CLAUDE_BODY)
    done = await gateway.complete("a", POLICY, req.messages, MODEL, _upstream_params(upstream, req.params))
    sent = upstream.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert sent["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'
    assert sent["messages"][3]["tool_call_id"] == "toolu_1"
    assert sent["tools"][0]["function"]["name"] == "get_weather" and sent["tool_choice"] == "auto"
    assert sent["max_tokens"] == 512

    body = messages_dialect.DIALECT.render(req, done)
    msg = anthropic.types.Message.model_validate(body)
    assert msg.stop_reason == "tool_use"
    thought = msg.content.pop(0)  # the client asked for thinking; the upstream reasoned
    assert thought.type == "thinking" and thought.thinking == "Oslo is asked; call the tool."
    assert msg.content[0].type == "text" and msg.content[0].text == "Checking Oslo."
    use = msg.content[1]
    assert use.type == "tool_use" and use.input == {"city": "Oslo"} and use.id == "call_up1"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (31, 12)

    # streamed: litellm's chunk dicts, rendered, parsed by the SDK's stream accumulator
    chunks = [c async for c in gateway.stream("a", POLICY, req.messages, MODEL, _upstream_params(upstream, req.params))]
    anthropic_server.requests.clear()
    anthropic_server.canned = [Canned(chunks=chunks)]
    client = anthropic.Anthropic(base_url=anthropic_server.base_url, api_key="t", max_retries=0)
    with client.messages.stream(**{k: v for k, v in CLAUDE_BODY.items() if k != "stream"}) as stream:
        final = stream.get_final_message()
    assert final.content[0].thinking == "Oslo is asked; call the tool."  # type: ignore[union-attr]
    assert final.content[1].text == "Checking Oslo."  # type: ignore[union-attr]
    assert final.content[2].input == {"city": "Oslo"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (31, 12)


async def test_responses_body_through_litellm(
    gateway: Gateway, upstream: ScriptedUpstream, responses_server: DialectServer
) -> None:
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "instructions": "You are a weather bot.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
            {"type": "function_call", "call_id": "call_0", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_0", "output": "sunny"},
            {"role": "user", "content": "And Oslo?"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            }
        ],
        "max_output_tokens": 300,
        "reasoning": {"summary": "auto"},
        "store": False,
    }
    req = responses_dialect.DIALECT.parse(body)
    done = await gateway.complete("a", POLICY, req.messages, MODEL, _upstream_params(upstream, req.params))
    sent = upstream.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert sent["tools"][0]["function"]["name"] == "get_weather" and sent["max_tokens"] == 300

    resp = openai.types.responses.Response.model_validate(responses_dialect.DIALECT.render(req, done))
    assert resp.output_text == "Checking Oslo."
    assert resp.output.pop(0).summary[0].text == "Oslo is asked; call the tool."  # type: ignore[union-attr]
    call = resp.output[1]
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Oslo"}
    assert resp.usage is not None and resp.usage.total_tokens == 43

    chunks = [c async for c in gateway.stream("a", POLICY, req.messages, MODEL, _upstream_params(upstream, req.params))]
    responses_server.requests.clear()
    responses_server.canned = [Canned(chunks=chunks)]
    client = openai.OpenAI(base_url=responses_server.base_url + "/v1", api_key="t", max_retries=0)
    with client.responses.stream(**body) as stream:
        final = stream.get_final_response()
    assert final.output_text == "Checking Oslo."
    assert final.output.pop(0).summary[0].text == "Oslo is asked; call the tool."  # type: ignore[union-attr]
    assert final.output[1].type == "function_call" and json.loads(final.output[1].arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (31, 12)


async def test_fleet_demo_answers_both_dialects(gateway: Gateway) -> None:
    """The offline model behind both dialects, tools in the request included."""
    policy = make_policy(llm={"model": "fleet/demo"})
    req = messages_dialect.DIALECT.parse({**CLAUDE_BODY, "tool_choice": {"type": "none"}})
    done = await gateway.complete("a", policy, req.messages, "fleet/demo", req.params)
    msg = anthropic.types.Message.model_validate(messages_dialect.DIALECT.render(req, done))
    assert msg.content and msg.content[0].type == "text" and msg.usage.output_tokens > 0

    rreq = responses_dialect.DIALECT.parse({"model": "gpt-4o", "input": "Any anomaly in checkout?", "stream": True})
    chunks = gateway.stream("a", policy, rreq.messages, "fleet/demo", rreq.params)
    events = [
        json.loads(f.decode().split("data: ", 1)[1])
        async for f in responses_dialect.DIALECT.render_stream(rreq, chunks)
    ]
    final = openai.types.responses.Response.model_validate(events[-1]["response"])
    assert events[-1]["type"] == "response.completed"
    assert "Assessment" in final.output_text and final.usage is not None and final.usage.output_tokens > 0
