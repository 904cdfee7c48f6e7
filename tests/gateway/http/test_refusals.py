"""Refusals in the shapes the official ``openai`` client turns into its typed exceptions.

401 for no/unknown/revoked tokens, 403 for policy refusals and web pages, 413
for big bodies, 429 that the client does not retry for a spent daily budget
(``x-should-retry: false``; the server counts the hits) and 429 with
``retry-after`` for rate windows; 400 for malformed bodies; keys redacted.
"""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from fleet.gateway.provider import ProviderCallError

from .conftest import Served, make_served, policy

USER = [{"role": "user", "content": "hello"}]


async def test_no_token_unknown_token_and_revoked_token_get_401(served: Served) -> None:
    for key in ("", "fleet-not-a-real-token", "sk-" + "x" * 40):
        client = served.async_client(api_key=key or "placeholder")
        if not key:
            client = served.async_client(api_key="unused", default_headers={"Authorization": ""})
        with pytest.raises(openai.AuthenticationError) as err:
            await client.chat.completions.create(model="gpt-4o", messages=USER)
        assert err.value.status_code == 401 and err.value.body["type"] == "invalid_request_error"
        await client.close()
    served.server.tokens.revoke("bot")  # the run ended
    with pytest.raises(openai.AuthenticationError):
        await served.async_client().chat.completions.create(model="gpt-4o", messages=USER)
    assert served.provider.calls == [] and served.records.items == []


async def test_x_api_key_is_accepted_like_a_bearer_token(served: Served) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{served.base_url}/models", headers={"x-api-key": served.token})
    assert r.status_code == 200 and r.json()["object"] == "list"


async def test_a_model_the_policy_does_not_allow_is_403_and_recorded_as_denied(served: Served) -> None:
    served.set_policy("bot", policy(llm={"aliases": {}}))
    client = served.async_client()
    with pytest.raises(openai.PermissionDeniedError) as err:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert "llm.models" in err.value.message
    assert [(r.outcome, r.endpoint) for r in served.records.items] == [("denied", "openai.chat")]
    await client.close()


async def test_browser_origin_and_foreign_host_are_refused(served: Served) -> None:
    client = served.async_client(default_headers={"Origin": "https://evil.example"})
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    async with httpx.AsyncClient() as http:
        r = await http.get(
            f"{served.base_url}/models", headers={"Authorization": f"Bearer {served.token}", "Host": "evil.example"}
        )
    assert r.status_code == 403
    assert served.provider.calls == []


async def test_body_over_the_limit_is_413() -> None:
    served = await make_served(max_body=64 * 1024)
    try:
        client = served.async_client()
        with pytest.raises(openai.APIStatusError) as err:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x" * 100_000}])
        assert err.value.status_code == 413
        # and the connection pool still works afterwards
        assert (await client.chat.completions.create(model="gpt-4o", messages=USER)).choices
        await client.close()
    finally:
        await served.server.close()


async def test_spent_daily_budget_is_a_rate_limit_error_the_client_does_not_retry(served: Served) -> None:
    served.set_policy("bot", policy(budget={"usd_per_day": 0.00001}))
    client = served.async_client(max_retries=3)
    await client.chat.completions.create(model="gpt-4o", messages=USER)  # spends past the budget
    before = served.server.requests
    with pytest.raises(openai.RateLimitError) as err:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert served.server.requests - before == 1  # no retries
    assert err.value.response.headers["x-should-retry"] == "false"
    assert err.value.body["type"] == "insufficient_quota"
    assert "usd_per_day" in err.value.message
    await client.close()


async def test_budget_pause_calls_on_exhausted(served: Served) -> None:
    paused: list[str] = []
    served.gateway.bind(on_exhausted=lambda agent, reason: paused.append(agent))
    served.set_policy("bot", policy(budget={"usd_per_day": 0.00001, "on_exhausted": "pause"}))
    client = served.async_client()
    await client.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert paused == ["bot"]
    await client.close()


async def test_rate_window_is_a_429_with_retry_after(served: Served) -> None:
    served.set_policy("bot", policy(budget={"requests_per_minute": 1}))
    client = served.async_client()
    await client.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.RateLimitError) as err:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    retry_after = int(err.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert err.value.response.headers.get("x-should-retry") is None
    assert err.value.body["type"] == "rate_limit_error"
    await client.close()


async def test_malformed_bodies_get_400_in_the_openai_shape(served: Served) -> None:
    bad = [
        b"{not json",
        b"[1, 2]",
        b'{"model": "gpt-4o"}',
        b'{"model": "gpt-4o", "messages": "hi"}',
        b'{"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]}',
        b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web"}]}',
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "n": 3}',
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
        b"\xff\xfe\x00",
    ]
    headers = {"Authorization": f"Bearer {served.token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient() as http:
        for body in bad:
            r = await http.post(f"{served.base_url}/chat/completions", content=body, headers=headers)
            assert r.status_code == 400, body
            err = r.json()["error"]
            assert err["type"] == "invalid_request_error" and err["message"]
    assert served.provider.calls == []


async def test_unknown_paths_are_404_and_unavailable_dialects_do_not_crash(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.token}"}
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{served.base_url}/embeddings", json={}, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
        for path in ("/v1/messages", "/v1/responses", "/v1/messages/count_tokens"):
            r = await http.post(f"{served.server.url}{path}", content=b"{nope", headers=headers)
            assert r.status_code in (400, 501), path  # 501 until that API's dialect is installed


async def test_provider_errors_are_redacted(served: Served) -> None:
    served.provider.replies = [ProviderCallError("upstream said: bad key sk-ant-0123456789abcdef")]
    client = served.async_client()
    with pytest.raises(openai.APIStatusError) as err:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert err.value.status_code == 502
    assert "0123456789abcdef" not in err.value.message and "[REDACTED]" in err.value.message
    await client.close()


async def test_a_flood_of_malformed_requests_leaves_the_server_serving(served: Served) -> None:
    host, port = "127.0.0.1", served.server.port

    async def garbage(i: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        payloads = [
            b"GARBAGE\r\n\r\n",
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\n{{{{{",
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
            b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ]
        writer.write(payloads[i % len(payloads)])
        await writer.drain()
        await reader.read(65536)  # the server answers (400/401) or closes
        writer.close()

    await asyncio.gather(*(garbage(i) for i in range(300)))
    client = served.async_client()
    resp = await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert resp.choices[0].message.content == "hello from the fake model"
    await client.close()


async def test_connections_beyond_the_limit_are_refused_and_idle_ones_closed() -> None:
    served = await make_served(max_connections=5, idle_timeout_s=0.5)
    request = (f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {served.token}\r\n\r\n").encode()
    try:
        conns = []
        for _ in range(5):  # five kept-alive connections, each served once (so surely accepted)
            reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)
            writer.write(request)
            assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
            conns.append((reader, writer))
        assert served.server.connections == 5
        reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)
        assert (await reader.read(100)).startswith(b"HTTP/1.1 503")
        writer.close()
        # Idle connections are closed by the server after idle_timeout_s (the reader sees EOF).
        for reader, writer in conns:
            async with asyncio.timeout(10):
                while await reader.read(65536):
                    pass
            writer.close()
    finally:
        await served.server.close()


async def test_tokens_per_minute_is_a_rate_limit_the_client_may_retry(served: Served) -> None:
    served.set_policy("bot", policy(budget={"tokens_per_minute": 5}))
    client = served.async_client()
    await client.chat.completions.create(model="gpt-4o", messages=USER)  # 1 + 5 tokens: the window is full
    with pytest.raises(openai.RateLimitError) as err:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert "tokens_per_minute" in err.value.message
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert err.value.response.headers.get("x-should-retry") is None
    await client.close()


async def test_a_body_that_never_arrives_times_out() -> None:
    served = await make_served(body_timeout_s=0.3)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)
        writer.write(
            (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {served.token}\r\nContent-Length: 100\r\n\r\n{{"
            ).encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 408")
        writer.close()
        assert served.provider.calls == []
    finally:
        await served.server.close()
