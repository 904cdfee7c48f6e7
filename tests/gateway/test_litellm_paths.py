"""The real provider: litellm mocks, the embedded fleet/demo model, and real HTTP on loopback.

All tests here share one litellm import (session fixture) and are marked ``litellm``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import ModuleType

import pytest

from fleet.errors import BudgetExhausted, ProviderError
from fleet.gateway import Gateway, LiteLLMProvider
from fleet.gateway.demo_provider import DemoEngine, demo_reply, usage_of

from .helpers import USER, LoopbackOpenAI, Records, make_policy

pytestmark = pytest.mark.litellm


@pytest.fixture
def gateway(litellm_loaded: ModuleType, records: Records) -> Gateway:
    return Gateway(
        provider=LiteLLMProvider(demo_latency_s=0), recorder=records, environ={}, retry_backoff_s=0.001
    )


@pytest.fixture
async def loopback() -> AsyncIterator[LoopbackOpenAI]:
    server = LoopbackOpenAI()
    await server.start()
    yield server
    await server.stop()


# ---------------------------------------------------------------- mock_response


async def test_mock_response_passes_through_with_usage_and_cost(gateway: Gateway, records: Records) -> None:
    policy = make_policy(llm={"model": "gpt-4o-mini"})
    resp = await gateway.complete("a", policy, USER, params={"mock_response": "mocked!"})
    assert resp["choices"][0]["message"]["content"] == "mocked!"
    json.dumps(resp)  # crosses the control channel as JSON
    assert resp["usage"]["prompt_tokens"] == 10 and resp["usage"]["completion_tokens"] == 20
    rec = records.items[0]
    assert rec.outcome == "ok" and rec.cost_usd > 0
    assert gateway.totals("a")["cost_usd"] == pytest.approx(rec.cost_usd)


async def test_mock_rate_limit_error_is_retried_then_reported(gateway: Gateway, records: Records) -> None:
    policy = make_policy(llm={"model": "gpt-4o-mini"})
    with pytest.raises(ProviderError, match="rate limit"):
        await gateway.complete(
            "a", policy, USER, params={"mock_response": "litellm.RateLimitError", "retries": 2}
        )
    assert records.outcomes() == ["error"]


async def test_mock_timeout_is_a_timeout(gateway: Gateway, records: Records) -> None:
    policy = make_policy(llm={"model": "gpt-4o-mini"})
    with pytest.raises(ProviderError):
        await gateway.complete(
            "a", policy, USER, params={"mock_response": "x", "mock_timeout": True, "timeout_s": 0.05}
        )
    assert records.outcomes() == ["timeout"]


async def test_mock_stream(gateway: Gateway, records: Records) -> None:
    policy = make_policy(llm={"model": "gpt-4o-mini"})
    chunks = [c async for c in gateway.stream("a", policy, USER, params={"mock_response": "streamed reply"})]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "streamed reply"
    json.dumps(chunks)
    assert records.items[0].outcome == "ok" and records.items[0].tokens_out > 0
    assert records.items[0].cost_usd > 0


async def test_concurrent_budget_with_litellm_mocks(gateway: Gateway) -> None:
    policy = make_policy(llm={"model": "gpt-4o-mini", "max_tokens": 20})
    one = gateway.provider.price("gpt-4o-mini", 10, 20)
    limit = 3.5 * one
    policy = make_policy(llm={"model": "gpt-4o-mini", "max_tokens": 20}, budget={"usd_per_day": limit})
    results = await asyncio.gather(
        *(
            gateway.complete("m", policy, USER, params={"mock_response": "y", "mock_delay": 0.01})
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    assert any(isinstance(r, BudgetExhausted) for r in results)
    assert gateway.totals("m")["cost_today_usd"] <= limit + one * 1.01


# ---------------------------------------------------------------- fleet/demo


def test_demo_replies_are_deterministic_and_topical() -> None:
    anomaly = [{"role": "user", "content": "Any anomaly in the sales metrics today?"}]
    assert demo_reply(anomaly) == demo_reply(anomaly)
    assert "Severity:" in demo_reply(anomaly)
    report = demo_reply([{"role": "user", "content": "Draft the weekly compliance report"}])
    assert report.startswith("Draft:")
    campaign = demo_reply([{"role": "user", "content": "Optimise the spring campaign"}])
    assert campaign.startswith("Recommendation:") and any(ch.isdigit() for ch in campaign)
    other = [{"role": "user", "content": "Optimise the summer campaign"}]
    assert demo_reply(other) != campaign or demo_reply(other) == demo_reply(other)
    usage = usage_of(anomaly, demo_reply(anomaly))
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


async def test_demo_engine_latency_is_deterministic_and_can_be_zero() -> None:
    engine = DemoEngine(latency_s=0)
    text, finish, usage = await engine.reply(USER, {"max_tokens": 3})
    assert finish == "length" and len(text.split()) <= 3 and usage["completion_tokens"] >= 1


async def test_demo_model_through_litellm(gateway: Gateway, records: Records) -> None:
    policy = make_policy(llm={"model": "fleet/demo", "models": ["fleet/demo"]})
    msgs = [{"role": "user", "content": "Check for an anomaly in checkout conversion"}]
    first = await gateway.complete("watch", policy, msgs)
    second = await gateway.complete("watch", policy, msgs)
    assert first["model"] == "fleet/demo"
    json.dumps(first)
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    assert "Severity" in first["choices"][0]["message"]["content"]
    assert first["usage"]["completion_tokens"] > 0
    assert records.items[0].cost_usd > 0


async def test_demo_model_streams(gateway: Gateway, records: Records) -> None:
    policy = make_policy(llm={"model": "fleet/demo", "models": ["fleet/demo"]})
    msgs = [{"role": "user", "content": "Recommend a campaign budget split"}]
    chunks = [c async for c in gateway.stream("mkt", policy, msgs)]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    full = await gateway.complete("mkt", policy, msgs)
    assert text == full["choices"][0]["message"]["content"]
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 3
    assert chunks[0]["model"] == "fleet/demo"
    assert records.items[0].tokens_out == full["usage"]["completion_tokens"]
    assert records.items[0].cost_usd == pytest.approx(records.items[1].cost_usd)


# ---------------------------------------------------------------- loopback HTTP


async def test_real_http_path_usage_and_cost(
    gateway: Gateway, loopback: LoopbackOpenAI, records: Records
) -> None:
    policy = make_policy(llm={"model": "openai/gpt-4o-mini"})
    params = {"api_base": loopback.api_base, "api_key": "test"}
    resp = await gateway.complete("a", policy, USER, params=params)
    assert resp["choices"][0]["message"]["content"] == "pong from loopback"
    assert resp["usage"] == {**resp["usage"], "prompt_tokens": 2, "completion_tokens": 3}
    assert loopback.auth == ["Bearer test"]
    json.dumps(resp)
    assert records.items[0].cost_usd == pytest.approx(gateway.provider.price("gpt-4o-mini", 2, 3))


async def test_real_http_stream(gateway: Gateway, loopback: LoopbackOpenAI, records: Records) -> None:
    policy = make_policy(llm={"model": "openai/gpt-4o-mini"})
    params = {"api_base": loopback.api_base, "api_key": "test"}
    chunks = [c async for c in gateway.stream("a", policy, USER, params=params)]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "pong from loopback"
    json.dumps(chunks)
    assert loopback.requests[0]["stream"] is True
    assert (records.items[0].tokens_in, records.items[0].tokens_out) == (2, 3)
    assert records.items[0].cost_usd > 0


async def test_real_http_5xx_is_retried(gateway: Gateway, loopback: LoopbackOpenAI, records: Records) -> None:
    loopback.fail_next = [500]
    policy = make_policy(llm={"model": "openai/gpt-4o-mini"})
    params = {"api_base": loopback.api_base, "api_key": "test", "retries": 1}
    resp = await gateway.complete("a", policy, USER, params=params)
    assert resp["choices"][0]["message"]["content"] == "pong from loopback"
    assert len(loopback.requests) == 2
    assert records.outcomes() == ["ok"]


async def test_real_http_error_is_redacted(
    litellm_loaded: ModuleType, loopback: LoopbackOpenAI, records: Records
) -> None:
    secret = "sk-proj-supersecretvalue42"
    loopback.fail_next = [401]
    loopback.error_body = f"Incorrect API key provided: {secret}"
    g = Gateway(
        provider=LiteLLMProvider(),
        recorder=records,
        environ={"OPENAI_API_KEY": secret, "OPENAI_API_BASE": ""},
    )
    policy = make_policy(llm={"model": "openai/gpt-4o-mini"})
    with pytest.raises(ProviderError) as ei:
        await g.complete("a", policy, USER, params={"api_base": loopback.api_base, "api_key": secret})
    assert secret not in str(ei.value) and "[REDACTED]" in str(ei.value)
    assert secret not in records.items[0].error
