"""Budgets under concurrency: reserve before the call, settle after, never overshoot by more than one call."""

from __future__ import annotations

import asyncio
import time

import pytest

from fleet.errors import BudgetExhausted
from fleet.gateway import FakeProvider, Gateway, prompt_token_bound

from .helpers import USER, Records, make_policy


def gw(provider: FakeProvider, records: Records | None = None, **kw: object) -> Gateway:
    return Gateway(provider=provider, recorder=records, environ={}, **kw)  # type: ignore[arg-type]


async def test_ten_concurrent_calls_cannot_overshoot_the_daily_budget(records: Records) -> None:
    # Each call really costs 2 in + 100 out tokens: 2e-6 + 100 * 2e-6 = $0.000202.
    fake = FakeProvider(["x"], tokens_out=100, gate=asyncio.Event(), delay_s=0.001)
    paused: list[tuple[str, str]] = []
    g = gw(fake, records, on_exhausted=lambda agent, reason: paused.append((agent, reason)))
    one_call = 2 * 1e-6 + 100 * 2e-6
    limit = 2.5 * one_call
    policy = make_policy(budget={"usd_per_day": limit}, llm={"max_tokens": 100})
    tasks = [asyncio.create_task(g.complete("spender", policy, USER)) for _ in range(10)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert fake.gate is not None
    fake.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, BudgetExhausted)]
    assert len(ok) + len(refused) == 10
    spent = g.totals("spender")["cost_today_usd"]
    assert spent <= limit + one_call + 1e-12
    assert len(ok) == 3  # admitted while spent + reserved < limit
    assert all(r.policy == "budget.usd_per_day" for r in refused)
    assert paused and paused[0][0] == "spender"
    assert g.totals("spender")["budget_used"] == pytest.approx(spent / limit)
    assert records.outcomes().count("ok") == 3 and records.outcomes().count("denied") == 7


async def test_reservation_uses_max_tokens_even_when_replies_are_small() -> None:
    # Replies cost much less than reserved: concurrent calls wait for settles, then proceed.
    gate = asyncio.Event()
    fake = FakeProvider(["tiny"], gate=gate)
    g = gw(fake)
    one_reservation = fake.price("m", prompt_token_bound(USER), 1000)
    policy = make_policy(budget={"usd_per_day": one_reservation * 1.5}, llm={"max_tokens": 1000})
    tasks = [asyncio.create_task(g.complete("a", policy, USER)) for _ in range(6)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert fake.in_flight == 2  # two reservations fill the budget; the rest wait for settles
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, dict) for r in results)  # real spend stayed tiny: nobody refused


async def test_tokens_per_minute_window(records: Records) -> None:
    now = [5000.0]
    fake = FakeProvider(["x"], tokens_out=40)
    g = gw(fake, records, clock=lambda: now[0])
    policy = make_policy(budget={"tokens_per_minute": 100}, llm={"max_tokens": 40})
    for _ in range(3):  # 42 tokens each: 126 >= 100 after the third
        await g.complete("a", policy, USER)
    with pytest.raises(BudgetExhausted) as ei:
        await g.complete("a", policy, USER)
    assert ei.value.policy == "budget.tokens_per_minute"
    await g.complete("b", policy, USER)  # other agents unaffected
    now[0] += 61
    await g.complete("a", policy, USER)


async def test_daily_budget_resets_on_a_new_local_day() -> None:
    now = [time.mktime((2026, 3, 10, 23, 59, 0, 0, 0, -1))]
    g = gw(FakeProvider(["x"], tokens_out=100), clock=lambda: now[0])
    policy = make_policy(budget={"usd_per_day": 0.0001})
    await g.complete("a", policy, USER)
    with pytest.raises(BudgetExhausted):
        await g.complete("a", policy, USER)
    now[0] += 120  # past local midnight
    assert g.totals("a")["cost_today_usd"] == 0.0
    await g.complete("a", policy, USER)
    assert g.totals("a")["cost_usd"] > g.totals("a")["cost_today_usd"]


async def test_seeded_totals_count_against_the_budget() -> None:
    g = gw(FakeProvider())
    g.seed_totals("a", tokens=1234, cost_usd=9.0, cost_today_usd=1.0)
    t = g.totals("a", make_policy(budget={"usd_per_day": 2.0}))
    assert t["tokens"] == 1234 and t["cost_usd"] == 9.0 and t["budget_used"] == 0.5
    with pytest.raises(BudgetExhausted):
        await g.complete("a", make_policy(budget={"usd_per_day": 1.0}), USER)


async def test_block_mode_waits_for_the_window_then_proceeds(records: Records) -> None:
    g = gw(FakeProvider(), records, window_s=0.2)
    policy = make_policy(budget={"requests_per_minute": 1, "on_exhausted": "block"})
    await g.complete("a", policy, USER)
    t0 = time.perf_counter()
    await g.complete("a", policy, USER)  # waits ~0.2 s for the first request to leave the window
    assert time.perf_counter() - t0 >= 0.15
    assert records.outcomes() == ["ok", "ok"]


async def test_block_mode_is_bounded_by_max_block_s() -> None:
    paused: list[str] = []
    g = gw(FakeProvider(["x"], tokens_out=100), max_block_s=0.05, on_exhausted=lambda a, r: paused.append(a))
    policy = make_policy(budget={"usd_per_day": 0.0001, "on_exhausted": "block"})
    await g.complete("a", policy, USER)
    with pytest.raises(BudgetExhausted, match="max_block_s"):
        await g.complete("a", policy, USER)
    assert paused == []  # block mode does not pause the agent


async def test_block_mode_wait_is_cancellable() -> None:
    g = gw(FakeProvider(["x"], tokens_out=100))
    policy = make_policy(budget={"usd_per_day": 0.0001, "on_exhausted": "block"})
    await g.complete("a", policy, USER)
    task = asyncio.create_task(g.complete("a", policy, USER))
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert g.totals("a")["in_flight"] == 0


async def test_cancelled_call_releases_its_reservation(records: Records) -> None:
    fake = FakeProvider(delay_s=10)
    g = gw(fake, records)
    policy = make_policy(budget={"usd_per_day": 1.0})
    task = asyncio.create_task(g.complete("a", policy, USER))
    await asyncio.wait_for(fake.wait_in_flight(1), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert g.totals("a")["in_flight"] == 0
    assert records.outcomes() == ["error"]
    assert records.items[0].error == "cancelled"


async def test_tokens_per_minute_does_not_pause_the_agent() -> None:
    paused: list[str] = []
    g = gw(FakeProvider(["x"], tokens_out=200), on_exhausted=lambda a, r: paused.append(a))
    policy = make_policy(budget={"tokens_per_minute": 100})
    await g.complete("a", policy, USER)
    with pytest.raises(BudgetExhausted):
        await g.complete("a", policy, USER)
    assert paused == []


async def test_zero_budget_refuses_everything() -> None:
    g = gw(FakeProvider())
    policy = make_policy(budget={"usd_per_day": 0.0})
    with pytest.raises(BudgetExhausted):
        await g.complete("a", policy, USER)
    assert g.totals("a", policy)["budget_used"] == 1.0
