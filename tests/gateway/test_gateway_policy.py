"""Gateway policy checks, recording, retries and failures, on the in-memory provider."""

from __future__ import annotations

import asyncio

import pytest

from fleet.errors import GatewayUnavailable, PolicyDenied, ProtocolError, ProviderError, RateLimited
from fleet.gateway import FakeProvider, Gateway, ProviderCallError

from .helpers import USER, Records, make_policy


def gw(provider: FakeProvider, records: Records | None = None, **kw: object) -> Gateway:
    return Gateway(provider=provider, recorder=records, environ={}, retry_backoff_s=0.001, **kw)  # type: ignore[arg-type]


async def test_allowed_model_calls_the_provider_and_returns_openai_shape(records: Records) -> None:
    fake = FakeProvider(["hi there agent"])
    g = gw(fake, records)
    resp = await g.complete("a1", make_policy(), USER)
    assert resp["choices"][0]["message"]["content"] == "hi there agent"
    assert resp["usage"]["completion_tokens"] == 3
    assert fake.calls[0][0] == "fake/model"  # the policy's default model
    assert records.outcomes() == ["ok"]
    rec = records.items[0]
    assert (rec.agent, rec.model, rec.tokens_in, rec.tokens_out) == ("a1", "fake/model", 2, 3)
    assert rec.cost_usd == pytest.approx(2 * 1e-6 + 3 * 2e-6)
    t = g.totals("a1")
    assert t["calls"] == 1 and t["tokens"] == 5 and t["errors"] == 0 and t["budget_used"] is None
    assert g.state == "ready"


async def test_model_outside_allow_list_is_denied_before_any_call(records: Records) -> None:
    fake = FakeProvider()
    g = gw(fake, records)
    with pytest.raises(PolicyDenied) as ei:
        await g.complete("a1", make_policy(), USER, model="anthropic/claude-3-opus")
    assert ei.value.policy == "llm.models"
    assert "anthropic/claude-3-opus" in str(ei.value)
    assert fake.calls == []
    assert records.outcomes() == ["denied"]
    assert g.totals("a1")["denied"] == 1


async def test_glob_allow_list_and_empty_allow_list() -> None:
    g = gw(FakeProvider())
    await g.complete(
        "a1", make_policy(llm={"models": ["fake/*"], "model": "fake/x"}), USER, model="fake/other"
    )
    with pytest.raises(PolicyDenied):
        await g.complete("a1", make_policy(llm={"models": [], "model": "fake/x"}), USER)


async def test_max_tokens_capped_by_policy_and_temperature_defaulted() -> None:
    fake = FakeProvider()
    g = gw(fake)
    policy = make_policy(llm={"max_tokens": 50, "temperature": 0.3})
    await g.complete("a1", policy, USER, params={"max_tokens": 5000, "retries": 2, "timeout_s": 9})
    params = fake.calls[0][2]
    assert params["max_tokens"] == 50 and params["temperature"] == 0.3 and params["timeout"] == 9
    assert "retries" not in params and "timeout_s" not in params


async def test_agent_cannot_override_gateway_internals() -> None:
    fake = FakeProvider()
    g = gw(fake)
    await g.complete("a1", make_policy(), USER, params={"stream": True, "callbacks": ["x"], "client": 1})
    assert not {"stream", "callbacks", "client"} & set(fake.calls[0][2])


async def test_bad_messages_are_a_protocol_error() -> None:
    g = gw(FakeProvider())
    with pytest.raises(ProtocolError):
        await g.complete("a1", make_policy(), [{"content": "no role"}])


async def test_requests_per_minute_limits_one_agent_not_the_fleet(records: Records) -> None:
    g = gw(FakeProvider(), records)
    policy = make_policy(budget={"requests_per_minute": 3})
    for _ in range(3):
        await g.complete("flood", policy, USER)
    with pytest.raises(RateLimited) as ei:
        await g.complete("flood", policy, USER)
    assert ei.value.policy == "budget.requests_per_minute"
    # Another agent under the same policy is unaffected.
    for _ in range(3):
        await g.complete("calm", policy, USER)
    assert records.outcomes().count("denied") == 1


async def test_rate_window_slides() -> None:
    now = [1000.0]
    g = gw(FakeProvider(), clock=lambda: now[0])
    policy = make_policy(budget={"requests_per_minute": 2})
    await g.complete("a", policy, USER)
    now[0] += 30
    await g.complete("a", policy, USER)
    with pytest.raises(RateLimited):
        await g.complete("a", policy, USER)
    now[0] += 31  # the first request left the window
    await g.complete("a", policy, USER)


async def test_flooding_agent_gets_at_most_max_in_flight_concurrent_calls() -> None:
    gate = asyncio.Event()
    fake = FakeProvider(gate=gate)
    g = gw(fake, max_in_flight=8)
    tasks = [asyncio.create_task(g.complete("flood", make_policy(), USER)) for _ in range(20)]
    other = asyncio.create_task(g.complete("other", make_policy(), USER))
    await asyncio.wait_for(fake.wait_in_flight(9), 5)  # 8 of flood + 1 of other
    for _ in range(5):
        await asyncio.sleep(0)
    assert fake.in_flight == 9
    assert g.totals("flood")["in_flight"] == 8
    gate.set()
    await asyncio.gather(*tasks, other)
    assert fake.max_in_flight == 9


async def test_retries_with_backoff_then_success(records: Records) -> None:
    fake = FakeProvider(
        [ProviderCallError("rate limited", retryable=True), ProviderCallError("5xx", retryable=True), "ok"]
    )
    g = gw(fake, records)
    resp = await g.complete("a", make_policy(), USER, params={"retries": 2})
    assert resp["choices"][0]["message"]["content"] == "ok"
    assert len(fake.calls) == 3
    assert records.outcomes() == ["ok"]


async def test_non_retryable_error_is_not_retried_and_is_recorded(records: Records) -> None:
    fake = FakeProvider([ProviderCallError("bad request"), "ok"])
    g = gw(fake, records)
    with pytest.raises(ProviderError, match="bad request"):
        await g.complete("a", make_policy(), USER, params={"retries": 3})
    assert len(fake.calls) == 1
    assert records.outcomes() == ["error"]
    assert g.totals("a")["errors"] == 1


async def test_timeout_becomes_provider_error_with_timeout_outcome(records: Records) -> None:
    fake = FakeProvider(delay_s=5)
    g = gw(fake, records)
    with pytest.raises(ProviderError, match="timed out"):
        await g.complete("a", make_policy(), USER, params={"timeout_s": 0.05})
    assert records.outcomes() == ["timeout"]
    assert g.totals("a")["in_flight"] == 0


async def test_provider_errors_are_redacted(records: Records, tmp_path: object) -> None:
    env = {"OPENAI_API_KEY": "loaded-secret-value-123"}
    fake = FakeProvider(
        [ProviderCallError("auth failed for sk-abcdefghijklmnop and loaded-secret-value-123 (fake/model)")]
    )
    g = Gateway(provider=fake, recorder=records, environ=env)
    with pytest.raises(ProviderError) as ei:
        await g.complete("a", make_policy(), USER, model="openai/x")
    msg = str(ei.value)
    assert "sk-abc" not in msg and "loaded-secret" not in msg and "[REDACTED]" in msg
    assert "loaded-secret" not in records.items[0].error
    # The loaded key was passed to the provider (never to the agent).
    assert fake.calls[0][2]["api_key"] == "loaded-secret-value-123"


async def test_caller_api_base_never_gets_supervisor_keys() -> None:
    fake = FakeProvider()
    g = Gateway(provider=fake, environ={"OPENAI_API_KEY": "sk-supervisor-secret"})
    await g.complete(
        "a", make_policy(), USER, model="openai/x", params={"api_base": "http://evil.example/v1"}
    )
    assert fake.calls[0][2]["api_key"] != "sk-supervisor-secret"


async def test_env_file_keys_are_used_not_exported(tmp_path: object) -> None:
    import os
    from pathlib import Path

    env_file = Path(str(tmp_path)) / ".env"
    env_file.write_text('# keys\nexport ANTHROPIC_API_KEY="sk-ant-from-file"\nOTHER=1\n')
    fake = FakeProvider()
    g = Gateway(provider=fake, environ={}, env_file=env_file)
    await g.complete("a", make_policy(llm={"models": ["anthropic/*"], "model": "anthropic/c"}), USER)
    assert fake.calls[0][2]["api_key"] == "sk-ant-from-file"
    assert "ANTHROPIC_API_KEY" not in os.environ or os.environ["ANTHROPIC_API_KEY"] != "sk-ant-from-file"
    assert "ANTHROPIC_API_KEY" in g.key_names


async def test_calls_while_loading_wait_and_load_errors_make_gateway_unavailable() -> None:
    slow = FakeProvider(load_delay_s=0.2)
    g = gw(slow)
    g.start()
    assert g.state == "loading"
    await g.complete("a", make_policy(), USER)
    assert g.state == "ready"

    broken = gw(FakeProvider(load_error=ImportError("no litellm here")))
    with pytest.raises(GatewayUnavailable, match="no litellm here"):
        await broken.complete("a", make_policy(), USER)
    assert broken.state == "error"


async def test_start_returns_at_once() -> None:
    import time

    g = gw(FakeProvider(load_delay_s=0.3))
    t0 = time.perf_counter()
    g.start()
    assert time.perf_counter() - t0 < 0.05
    await g.ready()


async def test_recorder_failure_does_not_fail_the_call() -> None:
    async def broken(_record: object) -> None:
        raise RuntimeError("db down")

    g = Gateway(provider=FakeProvider(), recorder=broken, environ={})
    resp = await g.complete("a", make_policy(), USER)
    assert resp["choices"][0]["message"]["content"] == "ok"


async def test_stream_yields_chunks_and_settles_usage(records: Records) -> None:
    g = gw(FakeProvider(["one two three"]), records)
    chunks = [c async for c in g.stream("a", make_policy(), USER)]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "one two three"
    assert records.outcomes() == ["ok"]
    assert records.items[0].tokens_out == 3
    assert g.totals("a")["in_flight"] == 0


async def test_stream_denied_and_closed_early(records: Records) -> None:
    g = gw(FakeProvider(["a b c d e f"]), records)
    with pytest.raises(PolicyDenied):
        async for _ in g.stream("a", make_policy(), USER, model="nope/x"):
            pass
    agen = g.stream("a", make_policy(), USER)
    first = await anext(agen)
    assert first["choices"][0]["delta"]["content"] == "a "
    await agen.aclose()
    assert records.outcomes() == ["denied", "ok"]
    assert g.totals("a")["in_flight"] == 0


async def test_stream_error_is_provider_error(records: Records) -> None:
    g = gw(
        FakeProvider([ProviderCallError("boom", retryable=True), ProviderCallError("boom again")]), records
    )
    with pytest.raises(ProviderError, match="boom again"):
        async for _ in g.stream("a", make_policy(), USER, params={"retries": 1}):
            pass
    assert records.outcomes() == ["error"]


class StallingProvider(FakeProvider):
    """Sends one chunk, then never another."""

    async def stream(self, model, messages, params):  # type: ignore[no-untyped-def,override]
        yield {"id": "s", "model": model, "choices": [{"index": 0, "delta": {"content": "first "}}]}
        await asyncio.Event().wait()


async def test_stalled_stream_times_out(records: Records) -> None:
    g = gw(StallingProvider(), records)
    got: list[dict] = []
    with pytest.raises(ProviderError, match="stalled"):
        async for chunk in g.stream("a", make_policy(), USER, params={"timeout_s": 0.05}):
            got.append(chunk)
    assert len(got) == 1
    assert records.outcomes() == ["timeout"]
    assert g.totals("a")["in_flight"] == 0


async def test_policy_version_is_recorded(records: Records) -> None:
    g = gw(FakeProvider(), records)
    await g.complete("a", make_policy(), USER, policy_version=7)
    with pytest.raises(PolicyDenied):
        await g.complete("a", make_policy(), USER, model="nope", policy_version=8)
    assert [r.policy_version for r in records.items] == [7, 8]
    assert records.items[1].error.startswith("llm.models:")
