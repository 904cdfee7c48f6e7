"""What the HTTP path costs on top of a direct gateway call, and what it sustains.

Why: agents written with their own clients reach the gateway over HTTP on
loopback (``POST /v1/chat/completions``) instead of the SDK's fd-3 channel.
That path adds a TCP round trip, HTTP parsing, JSON in and out, the dialect's
translation, the token lookup and the tool gate; the target is under 1 ms at
the median and 5 ms at p99 over the same call made directly, and calls/s with
20 agents no lower than the SDK path's (``python -m bench.sdk_llm``).

Measured on litellm's mock path (``mock_response``, no network), as
``bench.gateway_overhead`` does:

* per call, interleaved so drift hits all alike: ``litellm.acompletion``
  direct, ``Gateway.complete`` (what the SDK path calls), and the same call as
  an HTTP request from a lean keep-alive client in the same process (so the
  client's own parsing is billed to the HTTP path: an upper bound), plain and
  streamed; then the same with the in-memory ``FakeProvider`` (the server's own
  cost, no litellm noise);
* sustained: a real fleet of 20 agents calling as fast as they can, the SDK
  path first (``bench.sdk_llm``'s agents), then ``command`` agents (no import
  of fleet) with a stdlib keep-alive client (as light as an SDK agent) and
  with the official ``openai`` client; the supervisor counts the calls it
  records and its own CPU per call (the figure that does not depend on how
  busy the other processes of the machine are).

Run: ``python -m bench.http_gateway [--calls N] [--agents A] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from fleet.gateway import FakeProvider, Gateway, LiteLLMProvider
from fleet.gateway.http.server import Caller, GatewayServer
from fleet.policy.schema import Policy

MESSAGES = [{"role": "user", "content": "Summarise the overnight error logs in one line."}]
MODEL = "gpt-4o-mini"
BLOCK = 25


class MockedLiteLLM(LiteLLMProvider):
    """litellm's own mock path for every call (an HTTP client cannot send ``mock_response``)."""

    async def complete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        return await super().complete(model, messages, {**params, "mock_response": "ok"})

    def stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        return super().stream(model, messages, {**params, "mock_response": "ok"})


def policy(model: str) -> Policy:
    """Every limit on (so every check runs), none reached."""
    return Policy.model_validate(
        {
            "llm": {"models": [model], "model": model, "max_tokens": 64},
            "budget": {"usd_per_day": 1e6, "tokens_per_minute": 10**12, "requests_per_minute": 10**9},
            "tools": {"approve": ["publish_*"], "deny": ["shell"]},
        }
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class RawClient:
    """One keep-alive HTTP/1.1 connection with a prebuilt request: as little client as possible."""

    def __init__(self, port: int, token: str, body: dict[str, Any]) -> None:
        self.port = port
        payload = json.dumps(body).encode()
        self.request = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            body = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    return bytes(body)
                body += chunk[:-2]
        length = int(lower.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        return await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _served(provider: Any, model: str) -> tuple[Gateway, GatewayServer, str, Policy]:
    async def recorder(_rec: Any) -> None:
        return None

    gateway = Gateway(provider=provider, recorder=recorder, environ={})
    await gateway.ready()
    pol = policy(model)

    async def approve(*_: Any) -> tuple[bool, str, str]:
        return True, "", "bench"

    server = GatewayServer(
        gateway, lookup=lambda agent: Caller(agent, pol, 1), approve=approve, audit=lambda agent, data: None
    )
    await server.start()
    return gateway, server, server.tokens.issue("bench"), pol


async def per_call(calls: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    gateway, server, token, pol = await _served(MockedLiteLLM(), MODEL)
    import litellm  # loaded offline by the gateway above

    plain = RawClient(server.port, token, {"model": MODEL, "messages": MESSAGES, "max_tokens": 64})
    streamed = RawClient(
        server.port,
        token,
        {
            "model": MODEL,
            "messages": MESSAGES,
            "max_tokens": 64,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )

    async def direct() -> None:
        await litellm.acompletion(model=MODEL, messages=MESSAGES, mock_response="ok", max_tokens=64)

    async def sdk() -> None:
        await gateway.complete("bench", pol, MESSAGES, params={"max_tokens": 64})

    async def sdk_stream() -> None:
        async for _ in gateway.stream("bench", pol, MESSAGES, params={"max_tokens": 64}):
            pass

    paths = {
        "litellm": direct,
        "gateway": sdk,
        "http": plain.call,
        "gateway_stream": sdk_stream,
        "http_stream": streamed.call,
    }
    times: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(20):
        for fn in paths.values():
            await fn()
    # Rounds of BLOCK calls per path, rotating: litellm leaves logging work on the loop after
    # each call, and a path measured right after another would pay for the other's.
    for _ in range(max(1, calls // BLOCK)):
        for name, fn in paths.items():
            for _ in range(BLOCK):
                t = time.perf_counter()
                await fn()
                times[name].append(time.perf_counter() - t)
    plain.close()
    streamed.close()
    await server.close()

    gateway, server, token, pol = await _served(FakeProvider(["ok"]), "fake/m")
    fake_http = RawClient(server.port, token, {"model": "fake/m", "messages": MESSAGES})
    fake_times: dict[str, list[float]] = {"fake_gateway": [], "fake_http": []}
    for _ in range(20):
        await fake_http.call()
    for _ in range(calls):
        t = time.perf_counter()
        await gateway.complete("bench", pol, MESSAGES)
        fake_times["fake_gateway"].append(time.perf_counter() - t)
        t = time.perf_counter()
        await fake_http.call()
        fake_times["fake_http"].append(time.perf_counter() - t)
    fake_http.close()
    await server.close()
    for name, values in {**times, **fake_times}.items():
        out[name] = {"p50": statistics.median(values) * 1e3, "p99": pct(values, 0.99) * 1e3}
    return out


AGENTS = {
    # What agents really run: the official client (its own CPU per call is not small).
    "openai": """
import time
from openai import OpenAI
client = OpenAI(max_retries=0)
while True:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}],
                                   max_tokens=16)
""",
    # As light a client as an SDK agent (stdlib http.client, keep-alive): the gateway's own capacity.
    "stdlib": """
import http.client, json, os, urllib.parse
url = urllib.parse.urlsplit(os.environ["OPENAI_BASE_URL"])
conn = http.client.HTTPConnection(url.hostname, url.port)
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16})
headers = {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "Content-Type": "application/json"}
while True:
    conn.request("POST", url.path + "/chat/completions", body, headers)
    json.loads(conn.getresponse().read())
""",
}


async def sustained(agents: int, seconds: float, client: str) -> tuple[float, float]:
    """Calls/s, and supervisor CPU-ms per call (all its threads), with ``agents`` agents of ``client``."""
    from fleet.runtime import FleetRuntime

    tmp = tempfile.TemporaryDirectory()
    d = Path(tmp.name)
    (d / "policies").mkdir()
    if client == "sdk":
        from bench.sdk_llm import HAMMER

        (d / "agents").mkdir()
        (d / "agents" / "__init__.py").write_text("")
        (d / "agents" / "hammer.py").write_text(HAMMER)
        target = 'run = "agents.hammer:run"'
    else:
        (d / "agent.py").write_text(AGENTS[client])
        target = f'command = ["{sys.executable}", "agent.py"]'
    (d / "fleet.toml").write_text(
        textwrap.dedent(f"""
        [[agent]]
        name = "hammer"
        {target}
        replicas = {agents}
        [agent.llm]
        models = ["gpt-4o-mini"]
        model = "gpt-4o-mini"
    """)
    )
    rt = FleetRuntime(d, gateway=Gateway(MockedLiteLLM(), environ={}), watch=False)
    await rt.start(spawn=False)
    assert rt.sup is not None
    await rt.sup.gateway.ready()
    counted = 0
    started = 0.0
    seen: set[str] = set()
    all_calling = asyncio.Event()

    def on_usage(rec: Any) -> None:
        nonlocal counted
        if started:
            counted += 1
        elif rec.agent not in seen:
            seen.add(rec.agent)
            if len(seen) == agents:
                all_calling.set()

    rt.sup.hooks.on_usage.append(on_usage)
    rt.sup.spawn_all()
    await asyncio.wait_for(all_calling.wait(), 120)  # every agent imported openai and is calling
    started = time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu0
    rate = counted / (time.perf_counter() - started)
    cpu_ms = cpu / max(counted, 1) * 1e3
    await rt.stop()
    tmp.cleanup()
    return rate, cpu_ms


async def main(calls: int, agents: int, seconds: float) -> None:
    r = await per_call(calls)
    print(f"per call, {calls} calls each, interleaved (litellm mock_response; lean HTTP client, same process):")
    labels = {
        "litellm": "litellm.acompletion direct",
        "gateway": "Gateway.complete (SDK path's core)",
        "http": "POST /v1/chat/completions",
        "gateway_stream": "Gateway.stream",
        "http_stream": "POST ... stream (SSE, usage)",
        "fake_gateway": "Gateway.complete, FakeProvider",
        "fake_http": "POST ..., FakeProvider",
    }
    for key, label in labels.items():
        print(f"  {label:<36} p50 {r[key]['p50']:.3f} ms   p99 {r[key]['p99']:.3f} ms")
    for a, b, label in (
        ("http", "gateway", "HTTP over Gateway.complete"),
        ("http", "litellm", "HTTP over litellm direct"),
        ("http_stream", "gateway_stream", "HTTP stream over Gateway.stream"),
        ("fake_http", "fake_gateway", "HTTP over gateway, FakeProvider"),
    ):
        print(
            f"  overhead, {label:<32} p50 {r[a]['p50'] - r[b]['p50']:+.3f} ms   p99 {r[a]['p99'] - r[b]['p99']:+.3f} ms"
        )
    print(f"sustained, {agents} agents calling as fast as they can for {seconds:g} s each:")
    labels = {
        "sdk": "SDK agents (ctx.llm over fd 3)",
        "stdlib": "command agents, stdlib HTTP client",
        "openai": "command agents, official openai client",
    }
    for client, label in labels.items():
        rate, cpu_ms = await sustained(agents, seconds, client)
        print(f"  {label:<40} {rate:5.0f} calls/s   supervisor CPU {cpu_ms:.2f} ms/call")


async def serve(port: int, tokens: int) -> None:
    """Serve the HTTP gateway alone (for ``bench.litellm_proxy``): prints ``READY PORT TOKEN...``."""
    gateway = Gateway(MockedLiteLLM(), environ={})
    await gateway.ready()
    pol = policy(MODEL)

    async def approve(*_: Any) -> tuple[bool, str, str]:
        return True, "", "bench"

    server = GatewayServer(
        gateway, lookup=lambda agent: Caller(agent, pol, 1), approve=approve, audit=lambda a, d: None, port=port
    )
    await server.start()
    issued = [server.tokens.issue(f"agent-{i}") for i in range(tokens)]
    print("READY", server.port, *issued, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", type=int, metavar="PORT", help="only serve the gateway (bench.litellm_proxy)")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    if a.serve is not None:
        asyncio.run(serve(a.serve, a.agents))
    else:
        asyncio.run(main(a.calls, a.agents, a.seconds))
