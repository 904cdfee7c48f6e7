"""Budgets hold to one call over through the HTTP endpoints too (issue 22), with the official client.

The same 50 long, CJK and emoji prompts as tests/gateway/test_budget_prompts.py,
sent by ``openai.AsyncOpenAI`` to the gateway's Chat Completions endpoint at
once, against the worst tokenizer there can be (a token per UTF-8 byte).
"""

from __future__ import annotations

import asyncio

import openai

from ..test_budget_prompts import PROMPTS, ByteTokenizerProvider
from .conftest import make_served, policy


async def test_fifty_concurrent_http_calls_stay_within_one_call_of_the_budget() -> None:
    gate = asyncio.Event()
    fake = ByteTokenizerProvider(gate=gate, tokens_out=100)
    served = await make_served(fake)
    costs = [fake.price("fake/model", len(p.encode()), 100) for p in PROMPTS]
    limit = 4 * sum(costs) / len(costs)
    served.set_policy("bot", policy(budget={"usd_per_day": limit},
                                    llm={"max_tokens": 100}))
    client = served.async_client()
    try:
        async def one(i: int) -> object:
            return await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])

        calls = [asyncio.create_task(one(i)) for i in range(50)]
        await fake.wait_in_flight(1)
        gate.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await client.close()
        await served.server.close()
    refused = [r for r in results if isinstance(r, BaseException)]
    assert refused and all(isinstance(r, openai.APIStatusError) for r in refused), refused[:3]
    assert len(refused) < 50
    spent = served.gateway.totals("bot")["cost_today_usd"]
    assert spent <= limit + max(costs), (spent, limit, max(costs))
