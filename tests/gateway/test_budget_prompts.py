"""Budgets hold to one call over whatever the prompt: long, CJK, emoji (issue 22).

The reservation used to count a prompt as characters / 4; a provider that
counts CJK or emoji text at a token per character or more then cost several
times what was reserved, and 50 concurrent long prompts spent 2.6x the daily
budget. The provider here is the worst any tokenizer can be (a token per
UTF-8 byte), and calls go in flight together, half of them streamed.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from fleet.errors import BudgetExhausted
from fleet.gateway import FakeProvider, Gateway, LiteLLMProvider, demo_provider, prompt_token_bound

from .helpers import USER, make_policy

PROMPTS = [
    "The quarterly figures, line by line. " * 600,  # long English: ~22 KB
    "预算必须在并发调用下保持不变。" * 400,  # CJK: 3 bytes a character
    "🚀🔥💸🤖" * 800,  # emoji: 4 bytes each
    "Ünïcödé mixed 中文 and 😀 " * 500,
]


class ByteTokenizerProvider(FakeProvider):
    """Counts a token per UTF-8 byte of the prompt: more than any real tokenizer."""

    def _usage(self, messages: list[dict[str, Any]], text: str) -> tuple[int, int]:
        tokens_in = sum(len(str(m.get("content", "")).encode()) for m in messages)
        return tokens_in, self.fixed_tokens_out or 0


async def _spend(g: Gateway, policy: Any, n: int, gate: asyncio.Event, fake: FakeProvider) -> list[Any]:
    async def one(i: int) -> Any:
        messages = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
        if i % 2:
            async for _ in g.stream("greedy", policy, messages):
                pass
            return "streamed"
        return await g.complete("greedy", policy, messages)

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await fake.wait_in_flight(1)
    for _ in range(20):
        await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_fifty_concurrent_long_cjk_and_emoji_prompts_stay_within_one_call() -> None:
    gate = asyncio.Event()
    fake = ByteTokenizerProvider(gate=gate, tokens_out=100)
    g = Gateway(provider=fake, environ={})
    costs = [fake.price("m", len(p.encode()), 100) for p in PROMPTS]
    limit = 4 * sum(costs) / len(costs)  # about four calls' worth
    policy = make_policy(budget={"usd_per_day": limit}, llm={"max_tokens": 100})
    results = await _spend(g, policy, 50, gate, fake)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, BudgetExhausted) for e in errors), errors
    assert len(errors) < 50 and errors  # some calls ran, the rest were refused
    spent = g.totals("greedy")["cost_today_usd"]
    assert spent <= limit + max(costs), (spent, limit, max(costs))


def test_the_bound_counts_bytes_images_and_tools() -> None:
    text = "预算" * 10
    assert prompt_token_bound([{"role": "user", "content": text}]) >= len(text.encode())
    with_image = [{"role": "user", "content": [{"type": "text", "text": "look"},
                                               {"type": "image_url", "image_url": {"url": "x"}}]}]
    assert prompt_token_bound(with_image) > 1000
    tools = [{"type": "function", "function": {"name": "f" * 500}}]
    assert prompt_token_bound(USER, {"tools": tools}) > prompt_token_bound(USER) + 500


@pytest.mark.litellm
def test_openai_models_are_counted_by_the_providers_tokenizer(litellm_loaded: ModuleType) -> None:
    provider = LiteLLMProvider(demo_latency_s=0)
    provider.load()
    messages = [{"role": "user", "content": PROMPTS[1]}]
    counted = provider.count_prompt_tokens("gpt-4o-mini", messages, {})
    exact = litellm_loaded.token_counter(model="gpt-4o-mini", messages=messages)
    assert counted is not None and exact <= counted <= exact + 16
    assert counted > len(PROMPTS[1]) / 4 * 2  # what chars/4 missed
    # Unknown tokenizers (another provider, or an OpenAI-style server of unknown make): the byte bound.
    assert provider.count_prompt_tokens("anthropic/claude-3-5-haiku-latest", messages, {}) is None
    assert provider.count_prompt_tokens("openai/local", messages, {"api_base": "http://127.0.0.1:1/v1"}) is None
    # The demo model's own count is exact.
    assert provider.count_prompt_tokens("fleet/demo", messages, {}) == demo_provider.usage_of(messages, "")[
        "prompt_tokens"]
