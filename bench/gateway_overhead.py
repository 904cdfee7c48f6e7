"""What the gateway costs on top of litellm, per call and under load.

Why: every agent LLM call crosses the gateway (policy, rate windows, budget
reservation and settlement, usage record), so its overhead must stay small next
to litellm's own ~2 ms of CPU per mocked call. This measures, on the mock path
(``mock_response``, no network):

* per-call latency of ``litellm.acompletion`` directly vs ``Gateway.complete``
  (interleaved, so drift hits both alike): median and p99, and the difference;
* the gateway alone, with the in-memory ``FakeProvider`` (no litellm at all);
* sustained calls/s through the gateway with 20 concurrent agents.

Run: ``python -m bench.gateway_overhead [--calls N] [--seconds S] [--agents A]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from types import SimpleNamespace
from typing import Any

from fleet.gateway import FakeProvider, Gateway, LiteLLMProvider
from fleet.records import UsageRecord

MESSAGES = [{"role": "user", "content": "Summarise the overnight error logs in one line."}]
MODEL = "gpt-4o-mini"


def policy() -> Any:
    """A policy with every limit switched on (so every check runs) but never reached."""
    return SimpleNamespace(
        llm=SimpleNamespace(models=["gpt-4o-mini", "fake/*"], model=MODEL, temperature=None, max_tokens=64),
        budget=SimpleNamespace(
            usd_per_day=1e6, tokens_per_minute=10**12, requests_per_minute=10**9, on_exhausted="pause"
        ),
        tools=SimpleNamespace(allow=[], deny=[], approve=[], approval_timeout_s=1.0),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def per_call(calls: int) -> dict[str, float]:
    records: list[UsageRecord] = []

    async def recorder(rec: UsageRecord) -> None:
        records.append(rec)

    gateway = Gateway(provider=LiteLLMProvider(), recorder=recorder, environ={})
    t0 = time.perf_counter()
    await gateway.ready()
    load_s = time.perf_counter() - t0
    import litellm

    p = policy()
    for _ in range(20):  # warm up both paths
        await litellm.acompletion(model=MODEL, messages=MESSAGES, mock_response="ok")
        await gateway.complete("bench", p, MESSAGES, params={"mock_response": "ok"})

    direct: list[float] = []
    through: list[float] = []
    for _ in range(calls):
        t = time.perf_counter()
        await litellm.acompletion(model=MODEL, messages=MESSAGES, mock_response="ok", max_tokens=64)
        direct.append(time.perf_counter() - t)
        t = time.perf_counter()
        await gateway.complete("bench", p, MESSAGES, params={"mock_response": "ok"})
        through.append(time.perf_counter() - t)

    fake_gw = Gateway(provider=FakeProvider(), recorder=recorder, environ={})
    await fake_gw.ready()
    fake_p = SimpleNamespace(**{**vars(p), "llm": SimpleNamespace(**{**vars(p.llm), "model": "fake/m"})})
    alone: list[float] = []
    for _ in range(calls):
        t = time.perf_counter()
        await fake_gw.complete("bench", fake_p, MESSAGES)
        alone.append(time.perf_counter() - t)

    return {
        "load_s": load_s,
        "direct_median_ms": statistics.median(direct) * 1e3,
        "direct_p99_ms": pct(direct, 0.99) * 1e3,
        "gateway_median_ms": statistics.median(through) * 1e3,
        "gateway_p99_ms": pct(through, 0.99) * 1e3,
        "overhead_median_ms": (statistics.median(through) - statistics.median(direct)) * 1e3,
        "overhead_p99_ms": (pct(through, 0.99) - pct(direct, 0.99)) * 1e3,
        "fake_provider_median_us": statistics.median(alone) * 1e6,
        "fake_provider_p99_us": pct(alone, 0.99) * 1e6,
    }


async def sustained(agents: int, seconds: float) -> dict[str, float]:
    """Calls/s with ``agents`` concurrent loops, gateway vs litellm direct.

    After a warm-up, the two alternate in four rounds of ``seconds / 2`` so that
    machine noise and warm-up do not favour either.
    """

    async def recorder(_rec: UsageRecord) -> None:
        return None

    gateway = Gateway(provider=LiteLLMProvider(), recorder=recorder, environ={})
    await gateway.ready()
    import litellm

    p = policy()

    async def through(i: int) -> None:
        await gateway.complete(f"agent-{i}", p, MESSAGES, params={"mock_response": "ok"})

    async def direct(i: int) -> None:
        await litellm.acompletion(model=MODEL, messages=MESSAGES, mock_response="ok", max_tokens=64)

    async def load(call: Any, duration: float) -> tuple[int, float]:
        stop = time.perf_counter() + duration
        counts = [0] * agents

        async def agent(i: int) -> None:
            while time.perf_counter() < stop:
                await call(i)
                counts[i] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(agent(i) for i in range(agents)))
        return sum(counts), time.perf_counter() - t0

    await load(through, 0.5)
    await load(direct, 0.5)
    totals = {"gateway": [0, 0.0], "direct": [0, 0.0]}
    for name, call in (("gateway", through), ("direct", direct)) * 2:
        n, elapsed = await load(call, seconds / 2)
        totals[name][0] += n
        totals[name][1] += elapsed
    return {
        "agents": agents,
        "calls": totals["gateway"][0],
        "seconds": totals["gateway"][1],
        "calls_per_s": totals["gateway"][0] / totals["gateway"][1],
        "direct_calls_per_s": totals["direct"][0] / totals["direct"][1],
    }


async def main(calls: int, seconds: float, agents: int) -> None:
    a = await per_call(calls)
    print(f"litellm import + gateway load: {a['load_s']:.2f} s")
    print(f"per call, {calls} calls (mock_response):")
    rows = [
        ("litellm.acompletion direct", "direct_median_ms", "direct_p99_ms"),
        ("Gateway.complete", "gateway_median_ms", "gateway_p99_ms"),
        ("gateway overhead", "overhead_median_ms", "overhead_p99_ms"),
    ]
    for label, med, p99 in rows:
        print(f"  {label:<29} median {a[med]:.3f} ms   p99 {a[p99]:.3f} ms")
    print(
        f"  {'gateway alone (FakeProvider)':<29} median {a['fake_provider_median_us']:.1f} us   "
        f"p99 {a['fake_provider_p99_us']:.1f} us"
    )
    s = await sustained(agents, seconds)
    print(
        f"sustained: {s['agents']} concurrent agents, {s['calls']} calls in {s['seconds']:.1f} s "
        f"= {s['calls_per_s']:.0f} calls/s (litellm direct, same load: {s['direct_calls_per_s']:.0f} calls/s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--agents", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.seconds, args.agents))
