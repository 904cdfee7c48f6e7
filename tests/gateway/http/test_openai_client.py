"""Chat Completions through the gateway, checked with the official ``openai`` client.

Plain, async, streamed (with and without ``include_usage``), tools and tool
calls, ``response_format`` with a pydantic model, the models list, and every
call accounted like an SDK call (usage record with ``endpoint = openai.chat``).
"""

from __future__ import annotations

import asyncio
import json

import openai
import pydantic
import pytest

from .conftest import Served, policy

USER = [{"role": "user", "content": "Say hello to the fleet"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def test_sync_client_plain_call_is_aliased_governed_and_recorded(served: Served) -> None:
    def call() -> object:
        return served.client().chat.completions.create(model="gpt-4o", messages=USER)

    resp = await asyncio.to_thread(call)
    assert resp.choices[0].message.content == "hello from the fake model"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == 5 and resp.usage.completion_tokens == 5
    # "gpt-4o" went to the model the policy maps it to, and was recorded like an SDK call.
    assert served.provider.calls[0][0] == "fake/model"
    [rec] = served.records.items
    assert (rec.agent, rec.model, rec.outcome, rec.endpoint) == ("bot", "fake/model", "ok", "openai.chat")
    assert rec.tokens_in == 5 and rec.tokens_out == 5 and rec.cost_usd > 0
    assert served.gateway.totals("bot")["calls"] == 1


async def test_async_client_and_params_reach_the_model_but_not_gateway_knobs(served: Served) -> None:
    client = served.async_client()
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        temperature=0.2,
        max_completion_tokens=50,
        seed=3,
        extra_body={"api_base": "http://evil.example", "mock_response": "x", "api_key": "sk-leak-me-please"},
    )
    assert resp.choices[0].message.content == "hello from the fake model"
    _, _, params = served.provider.calls[0]
    assert params["temperature"] == 0.2 and params["max_tokens"] == 50 and params["seed"] == 3
    assert not {"api_base", "mock_response"} & set(params)
    assert params.get("api_key") != "sk-leak-me-please"
    await client.close()


async def test_stream_with_include_usage(served: Served) -> None:
    client = served.async_client()
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = "", None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
            assert chunk.choices == []
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "hello from the fake model"
    assert usage is not None and usage.completion_tokens == 5 and usage.total_tokens == 10
    [rec] = served.records.items
    assert rec.outcome == "ok" and rec.tokens_out == 5 and rec.endpoint == "openai.chat"
    await client.close()


async def test_stream_without_include_usage_sends_no_usage_chunk(served: Served) -> None:
    def call() -> list[object]:
        return list(served.client().chat.completions.create(model="gpt-4o", messages=USER, stream=True))

    chunks = await asyncio.to_thread(call)
    assert chunks and all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "hello from the fake model"
    assert served.records.items[0].tokens_out == 5  # accounted all the same


async def test_tool_calls_round_trip(served: Served) -> None:
    client = served.async_client()
    resp = await client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER])
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    [call] = msg.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "demo city"}
    follow = [*USER, msg.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    final = await client.chat.completions.create(model="gpt-4o", messages=follow, tools=[WEATHER])
    assert final.choices[0].message.content and not final.choices[0].message.tool_calls
    assert served.audits[0]["target"] == "get_weather" and served.audits[0]["details"]["decision"] == "allow"
    await client.close()


async def test_streamed_tool_call_is_assembled_by_the_client(served: Served) -> None:
    client = served.async_client()
    async with client.chat.completions.stream(model="gpt-4o", messages=USER, tools=[WEATHER]) as stream:
        final = await stream.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == "Let me check. "
    assert msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "demo city"}
    assert final.choices[0].finish_reason == "tool_calls"
    await client.close()


class Forecast(pydantic.BaseModel):
    city: str
    high_c: int
    tags: list[str]


async def test_response_format_parses_into_a_model(served: Served) -> None:
    client = served.async_client()
    resp = await client.chat.completions.parse(model="gpt-4o", messages=USER, response_format=Forecast)
    parsed = resp.choices[0].message.parsed
    assert isinstance(parsed, Forecast) and parsed.high_c == 1 and parsed.tags == ["demo tags"]
    assert served.provider.calls[0][2]["response_format"]["type"] == "json_schema"
    await client.close()


async def test_models_lists_what_the_agent_may_ask_for(served: Served) -> None:
    served.set_policy(
        "bot",
        policy(
            llm={
                "models": ["fake/*", "fake/model", "other/x"],
                "aliases": {"gpt-4o": "fake/model", "claude-*": "fake/model"},
            }
        ),
    )
    client = served.async_client()
    ids = [m.id async for m in client.models.list()]
    assert ids == ["fake/model", "other/x", "gpt-4o"]
    assert (await client.models.retrieve("gpt-4o")).id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("llama-3")
    await client.close()
