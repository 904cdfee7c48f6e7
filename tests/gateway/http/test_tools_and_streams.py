"""Tool rules and stream accounting on the HTTP path, with the official ``openai`` client.

Denied tools never reach the model; a denied call the model makes anyway is
replaced by text; a call needing approval is held until a human decides (text
streams on meanwhile), released as made when approved, replaced when denied or
timed out. A client that hangs up mid-stream is settled on what it received,
and a daily budget holds under 20 concurrent streams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai

from fleet.gateway import FakeProvider

from .conftest import Served, ToolingFake, make_served, policy

USER = [{"role": "user", "content": "Please publish the report"}]


def tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]},
        },
    }


async def test_denied_tools_are_removed_before_the_model_sees_them(served: Served) -> None:
    served.set_policy("bot", policy(tools={"deny": ["shell"]}))
    client = served.async_client()
    resp = await client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        tools=[tool("shell"), tool("publish")],
        tool_choice={"type": "function", "function": {"name": "shell"}},
    )
    sent = served.provider.calls[0][2]
    assert [t["function"]["name"] for t in sent["tools"]] == ["publish"] and "tool_choice" not in sent
    assert resp.choices[0].message.tool_calls[0].function.name == "publish"
    # Only denied tools: no tools at all reach the model.
    await client.chat.completions.create(model="gpt-4o", messages=USER, tools=[tool("shell")])
    assert "tools" not in served.provider.calls[1][2]
    await client.close()


async def test_a_denied_call_made_anyway_is_replaced_by_text(served: Served) -> None:
    served.set_policy("bot", policy(tools={"deny": ["shell"]}))
    served.provider.forced_call = ("shell", '{"cmd": "rm -rf /"}')
    client = served.async_client()
    resp = await client.chat.completions.create(model="gpt-4o", messages=USER)
    choice = resp.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert "shell" in choice.message.content and "not run" in choice.message.content
    assert served.audits[-1]["details"]["decision"] == "deny"
    # Streamed, the same.
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [c async for c in stream]
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert "not run" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"
    await client.close()


async def test_held_call_is_released_when_approved(served: Served) -> None:
    served.set_policy("bot", policy(tools={"approve": ["publish"]}))
    client = served.async_client()
    call = asyncio.ensure_future(client.chat.completions.create(model="gpt-4o", messages=USER, tools=[tool("publish")]))
    pending = await served.pending_approval()
    assert pending["action"] == "publish" and pending["details"]["arguments"] == {"to": "demo to"}
    assert pending["details"]["endpoint"] == "openai.chat"
    assert not call.done()
    await served.approvals.decide(pending["id"], True, "operator")
    resp = await call
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.choices[0].message.tool_calls[0].function.name == "publish"
    assert served.audits[-1]["details"] | {"approved": True} == served.audits[-1]["details"]
    await client.close()


async def test_held_call_denied_becomes_text_with_the_reason(served: Served) -> None:
    served.set_policy("bot", policy(tools={"approve": ["publish"]}))
    client = served.async_client()
    call = asyncio.ensure_future(client.chat.completions.create(model="gpt-4o", messages=USER, tools=[tool("publish")]))
    pending = await served.pending_approval()
    await served.approvals.decide(pending["id"], False, "operator", "not before legal reads it")
    resp = await call
    assert resp.choices[0].finish_reason == "stop" and not resp.choices[0].message.tool_calls
    assert "not before legal reads it" in resp.choices[0].message.content
    await client.close()


async def test_held_call_times_out_to_deny(served: Served) -> None:
    served.set_policy("bot", policy(tools={"approve": ["publish"], "approval_timeout_s": 0.2}))
    client = served.async_client()
    resp = await client.chat.completions.create(model="gpt-4o", messages=USER, tools=[tool("publish")])
    assert "none came within 0.2s" in resp.choices[0].message.content
    assert served.audits[-1]["details"]["decided_by"] == "timeout"
    await client.close()


async def test_streaming_text_flows_while_the_tool_call_is_held() -> None:
    served = await make_served(heartbeat_s=0.05)
    served.set_policy("bot", policy(tools={"approve": ["publish"]}))
    try:
        client = served.async_client()
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=USER, tools=[tool("publish")], stream=True, stream_options={"include_usage": True}
        )
        it = stream.__aiter__()
        first = await anext(it)
        assert first.choices[0].delta.content == "Let me check. "  # text before any decision
        pending = await served.pending_approval()
        # The call is settled already: a human's thinking time holds no reservation.
        assert served.records.items and served.gateway.totals("bot")["in_flight"] == 0
        await served.approvals.decide(pending["id"], True, "operator")
        rest = [c async for c in it]
        calls = [c.choices[0].delta.tool_calls for c in rest if c.choices and c.choices[0].delta.tool_calls]
        assert calls[0][0].function.name == "publish" and json.loads(calls[0][0].function.arguments) == {
            "to": "demo to"
        }
        assert [c.choices[0].finish_reason for c in rest if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
        assert rest[-1].usage is not None and rest[-1].usage.total_tokens == 12
        await client.close()
    finally:
        await served.server.close()


async def test_heartbeats_keep_a_waiting_non_streamed_client_alive() -> None:
    served = await make_served(heartbeat_s=0.05)
    served.set_policy("bot", policy(tools={"approve": ["publish"]}))
    try:
        # A read timeout shorter than the human's decision: heartbeats keep the client waiting.
        client = served.async_client(timeout=httpx.Timeout(5.0, read=0.5))
        call = asyncio.ensure_future(
            client.chat.completions.create(model="gpt-4o", messages=USER, tools=[tool("publish")])
        )
        pending = await served.pending_approval()
        await asyncio.sleep(1.2)  # longer than the read timeout: only heartbeats keep the client waiting
        await served.approvals.decide(pending["id"], True, "operator")
        resp = await call
        assert resp.choices[0].message.tool_calls[0].function.name == "publish"
        await client.close()
    finally:
        await served.server.close()


class SlowStream(FakeProvider):
    """Streams ten words, each released by ``step`` (so a test controls the pace)."""

    def __init__(self) -> None:
        super().__init__()
        self.step = asyncio.Queue[None]()
        self.closed = asyncio.Event()

    async def stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> AsyncIterator[dict]:
        try:
            for i in range(10):
                await self.step.get()
                yield {"id": "s", "model": model, "choices": [{"index": 0, "delta": {"content": f"word{i} "}}]}
            yield {"id": "s", "model": model, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 10}}
        finally:
            self.closed.set()


async def test_a_client_closing_mid_stream_is_settled_on_what_it_got() -> None:
    provider = SlowStream()
    served = await make_served(provider)
    settled = asyncio.Event()
    records = served.records

    async def record(rec: Any) -> None:
        records.items.append(rec)
        settled.set()

    served.gateway._recorder = record
    try:
        client = served.async_client()
        for _ in range(2):
            provider.step.put_nowait(None)
        stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        it = stream.__aiter__()
        assert (await anext(it)).choices[0].delta.content == "word0 "
        assert (await anext(it)).choices[0].delta.content == "word1 "
        await stream.close()  # the client hangs up
        for _ in range(8):
            provider.step.put_nowait(None)  # the server notices at its next write
        await settled.wait()
        await provider.closed.wait()
        [rec] = records.items
        assert rec.outcome == "ok" and rec.endpoint == "openai.chat"
        # What was delivered, not the full answer (60 bytes): with no usage from the provider, a
        # token per UTF-8 byte received, the bound no tokenizer exceeds (chars / 4 undercounted CJK).
        assert 1 <= rec.tokens_out <= 6 * len("word0 ")
        assert served.gateway.totals("bot")["in_flight"] == 0
        await client.close()
    finally:
        await served.server.close()


async def test_daily_budget_holds_under_20_concurrent_streams() -> None:
    gate = asyncio.Event()
    provider = ToolingFake(["one two three four five six seven eight nine ten"], gate=gate, price_out=1e-4)
    served = await make_served(provider)
    # Each call reserves ~ (prompt + max_tokens 20) tokens; the budget admits a few at once.
    served.set_policy("bot", policy(llm={"max_tokens": 20}, budget={"usd_per_day": 0.004}))
    try:
        client = served.async_client()

        async def one() -> str:
            try:
                stream = await client.chat.completions.create(
                    model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
                )
                return "ok" if [c async for c in stream] else "empty"
            except openai.RateLimitError:
                return "refused"

        calls = [asyncio.ensure_future(one()) for _ in range(20)]
        await provider.wait_in_flight(1)
        gate.set()
        outcomes = await asyncio.gather(*calls)
        spent = served.gateway.totals("bot")["cost_today_usd"]
        ok = outcomes.count("ok")
        assert 1 <= ok < 10 and outcomes.count("refused") == 20 - ok
        # Overshoot is at most one call's worth (10 tokens out at 1e-4, plus the prompt).
        assert spent <= 0.004 + 10 * 1e-4 + 1e-5
        assert sum(r.outcome == "ok" for r in served.records.items) == ok
        await client.close()
    finally:
        await served.server.close()


async def test_a_held_call_whose_client_went_away_is_withdrawn() -> None:
    served = await make_served(heartbeat_s=0.05)
    served.set_policy("bot", policy(tools={"approve": ["publish"]}))
    try:
        client = served.async_client()
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=USER, tools=[tool("publish")], stream=True
        )
        it = stream.__aiter__()
        await anext(it)  # text came; the tool call is held
        pending = await served.pending_approval()
        await stream.close()  # the agent gives up (killed, timed out...)
        expired = await served.decided_approval(pending["id"])
        assert (expired["state"], expired["decided_by"]) == ("expired", "cancelled")
        assert served.approvals.pending() == []
        await client.close()
    finally:
        await served.server.close()


class BreaksMidStream(FakeProvider):
    async def stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> AsyncIterator[dict]:
        from fleet.gateway.provider import ProviderCallError

        yield {"id": "b", "model": model, "choices": [{"index": 0, "delta": {"content": "half "}}]}
        raise ProviderCallError("upstream connection reset, key sk-secret-0123456789")


async def test_a_provider_failing_mid_stream_ends_it_with_an_error_event() -> None:
    served = await make_served(BreaksMidStream())
    try:
        client = served.async_client()
        stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        got = []
        try:
            async for chunk in stream:
                got.append(chunk.choices[0].delta.content)
            raise AssertionError("no error")
        except openai.APIError as exc:
            assert "upstream connection reset" in exc.message and "0123456789" not in exc.message
        assert got == ["half "]
        [rec] = served.records.items
        assert rec.outcome == "error" and rec.endpoint == "openai.chat"
        await client.close()
    finally:
        await served.server.close()
