"""The Anthropic Messages and OpenAI Responses dialects behind the real gateway server.

With the official ``anthropic`` and ``openai`` clients, the OpenAI Agents SDK and
a Claude Code-shaped raw request: aliasing, auth by bearer or ``x-api-key``,
typed refusals, streamed tool calls, held tool calls released or denied, and
``count_tokens``. Skipped where the server (issue 16's other half) is absent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("fleet.gateway.http.server")

import anthropic
import httpx
import openai

from .conftest import Served, policy

PUBLISH_A = {
    "name": "publish",
    "description": "Publish the report",
    "input_schema": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]},
}
PUBLISH_R = {
    "type": "function",
    "name": "publish",
    "description": "Publish the report",
    "parameters": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]},
}
ASK = [{"role": "user", "content": "Please publish the report"}]


def _anthropic(served: Served, **kw: Any) -> anthropic.AsyncAnthropic:
    kw.setdefault("api_key", served.token)
    return anthropic.AsyncAnthropic(base_url=served.server.url, max_retries=0, **kw)


# ------------------------------------------------------------------ Anthropic Messages


async def test_anthropic_plain_is_aliased_and_recorded(served: Served) -> None:
    client = _anthropic(served)
    msg = await client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=ASK, system="Be brief.")
    assert msg.content[0].type == "text" and msg.content[0].text == "hello from the fake model"
    assert msg.stop_reason == "end_turn" and msg.model == "claude-sonnet-4-5"
    assert served.provider.calls[0][0] == "fake/model"
    [rec] = served.records.items
    assert (rec.model, rec.outcome, rec.endpoint) == ("fake/model", "ok", "anthropic.messages")
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (rec.tokens_in, rec.tokens_out)
    await client.close()


async def test_claude_code_shaped_request_with_x_api_key(served: Served) -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        "tools": [PUBLISH_A],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "user_" + "a" * 64 + "_account__session_x"},
        "temperature": 1,
    }
    headers = {
        "x-api-key": served.token,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
    }
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.server.url}/v1/messages?beta=true", json=body, headers=headers)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("event: ") for line in resp.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "content_block_start" in events


async def test_anthropic_streamed_tool_use(served: Served) -> None:
    served.set_policy("bot", policy(tools={"allow": ["publish"]}))
    client = _anthropic(served)
    async with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=ASK, tools=[PUBLISH_A]) as s:
        final = await s.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"to": "demo to"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    assert served.records.items[-1].endpoint == "anthropic.messages"
    await client.close()


async def test_anthropic_refusals_are_typed(served: Served) -> None:
    bad = _anthropic(served, api_key="not-a-token")
    with pytest.raises(anthropic.AuthenticationError):
        await bad.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=ASK)
    served.set_policy("bot", policy(llm={"aliases": {}}))
    client = _anthropic(served)
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        await client.messages.create(model="claude-opus-4", max_tokens=10, messages=ASK)
    assert info.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad_request:
        await client.messages.create(model="fake/model", max_tokens=10, messages=[])
    assert "messages" in bad_request.value.message
    await bad.close()
    await client.close()


async def test_anthropic_held_tool_call_denied_becomes_text(served: Served) -> None:
    served.set_policy("bot", policy(tools={"approve": ["publish"]}))
    client = _anthropic(served)
    call = asyncio.ensure_future(
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=ASK, tools=[PUBLISH_A])
    )
    pending = await served.pending_approval()
    assert pending["details"]["endpoint"] == "anthropic.messages"
    await served.approvals.decide(pending["id"], False, "operator", "legal has not read it")
    msg = await call
    assert all(b.type == "text" for b in msg.content)
    assert "legal has not read it" in "".join(b.text for b in msg.content)  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    await client.close()


async def test_anthropic_count_tokens(served: Served) -> None:
    client = _anthropic(served)
    counted = await client.messages.count_tokens(model="claude-sonnet-4-5", messages=ASK, tools=[PUBLISH_A])
    assert counted.input_tokens > 0
    await client.close()


# ------------------------------------------------------------------ OpenAI Responses


async def test_responses_plain_stream_and_refusal(served: Served) -> None:
    client = served.async_client()
    resp = await client.responses.create(model="gpt-4o", input="Say hello", instructions="Be brief.")
    assert resp.output_text == "hello from the fake model" and resp.status == "completed"
    assert served.records.items[-1].endpoint == "openai.responses"
    assert resp.usage is not None and resp.usage.output_tokens == served.records.items[-1].tokens_out

    served.set_policy("bot", policy(tools={"allow": ["publish"]}))
    async with client.responses.stream(model="gpt-4o", input="publish", tools=[PUBLISH_R]) as stream:  # type: ignore[list-item]
        final = await stream.get_final_response()
    call = final.output[-1]
    assert call.type == "function_call" and json.loads(call.arguments) == {"to": "demo to"}

    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-4o", input="x", previous_response_id="resp_1")
    assert info.value.param == "previous_response_id"
    await client.close()


async def test_responses_held_call_approved(served: Served) -> None:
    served.set_policy("bot", policy(tools={"approve": ["publish"]}))
    client = served.async_client()
    call = asyncio.ensure_future(client.responses.create(model="gpt-4o", input="publish", tools=[PUBLISH_R]))  # type: ignore[list-item]
    pending = await served.pending_approval()
    assert pending["details"]["endpoint"] == "openai.responses"
    await served.approvals.decide(pending["id"], True, "operator")
    resp = await call
    assert resp.output[-1].type == "function_call" and resp.output[-1].name == "publish"  # type: ignore[union-attr]
    await client.close()


async def test_agents_sdk_turn_through_the_gateway(served: Served) -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    served.set_policy("bot", policy(tools={"allow": ["publish"]}))
    published: list[str] = []

    @function_tool
    def publish(to: str) -> str:
        """Publish the report."""
        published.append(to)
        return f"published to {to}"

    client = served.async_client()
    agent = Agent(
        name="publisher",
        instructions="Publish when asked.",
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
        tools=[publish],
    )
    result = await Runner.run(agent, "Please publish the report")
    assert published == ["demo to"]
    assert result.final_output == "hello from the fake model"
    assert [r.endpoint for r in served.records.items] == ["openai.responses", "openai.responses"]
    await client.close()
