"""The queue's rules, without processes: allocation, leases, retries, restart recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleet.records import AgentState
from fleet.store import Store
from fleet.tasks import TaskError, TaskQueue
from tests.tasks.fakes import Clock, FakeInst, FakeSup, policy

S = AgentState


def takes(*kinds: str, concurrency: int = 1, priority: int = 0) -> object:
    return policy(tasks={"kinds": list(kinds), "concurrency": concurrency, "priority": priority})


def make(*insts: FakeInst, **fleet: object) -> tuple[FakeSup, TaskQueue, Clock]:
    sup = FakeSup(*insts, **fleet)
    clock = Clock()
    q = TaskQueue(sup, clock=clock)  # type: ignore[arg-type]
    sup.services.tasks = q
    sup.hooks.on_state.append(q.on_state)
    return sup, q, clock


def states_of(sup: FakeSup, task_id: int) -> list[str]:
    return [d["state"] for _, d in sup.of("task") if d["id"] == task_id]


async def test_highest_priority_of_an_accepted_kind_first() -> None:
    a = FakeInst("a", takes("report", "email"))
    _sup, q, _ = make(a)
    await q.add("email", {"n": 1}, 1)
    await q.add("crawl", {"n": 2}, 99)  # not a kind ``a`` accepts
    await q.add("report", {"n": 3}, 5)
    await q.add("email", {"n": 4}, 5)
    got = []
    for _ in range(3):
        t = await q.next_for(a, timeout=0)
        assert t is not None
        got.append(t["payload"]["n"])
        await q.done(a, t["id"])
    assert got == [3, 4, 1]  # priority 5 in id order, then 1; the crawl task stays queued
    assert await q.next_for(a, timeout=0) is None
    assert [t["kind"] for t in q.snapshot(["queued"])] == ["crawl"]


async def test_the_agent_can_narrow_its_kinds_but_never_widen_them() -> None:
    a = FakeInst("a", takes("report", "email"))
    _, q, _ = make(a)
    await q.add("email", None, 9)
    await q.add("report", None, 1)
    await q.add("crawl", None, 5)
    t = await q.next_for(a, kinds=["report"], timeout=0)
    assert t is not None and t["kind"] == "report"
    assert await q.next_for(a, kinds=["crawl"], timeout=0) is None


async def test_globs_in_policy_kinds() -> None:
    a = FakeInst("a", takes("campaign.*"))
    _, q, _ = make(a)
    await q.add("campaign.north")
    await q.add("report")
    t = await q.next_for(a, timeout=0)
    assert t is not None and t["kind"] == "campaign.north"
    await q.done(a, t["id"])
    assert await q.next_for(a, timeout=0) is None


async def test_concurrency_caps_the_leases_an_agent_holds() -> None:
    a = FakeInst("a", takes("x", concurrency=2))
    _, q, _ = make(a)
    for _ in range(3):
        await q.add("x")
    t1 = await q.next_for(a, timeout=0)
    t2 = await q.next_for(a, timeout=0)
    assert t1 and t2
    assert await q.next_for(a, timeout=0) is None  # two held: no third
    await q.done(a, t1["id"])
    assert await q.next_for(a, timeout=0) is not None


async def test_a_waiting_agent_gets_the_task_when_it_arrives() -> None:
    a = FakeInst("a", takes("x"))
    sup, q, _ = make(a)
    waiting = asyncio.ensure_future(q.next_for(a))
    await asyncio.sleep(0)
    assert q.waiting_agents() == {"a"}
    added = await q.add("x", {"hello": 1})
    got = await asyncio.wait_for(waiting, 5)
    assert got["id"] == added.id and got["attempt"] == 1
    assert states_of(sup, added.id) == ["queued", "leased"]
    assert q.waiting_agents() == set()


async def test_next_task_timeout_returns_none() -> None:
    a = FakeInst("a", takes("x"))
    _, q, _ = make(a)
    assert await q.next_for(a, timeout=0.01) is None
    assert q.waiting_agents() == set()


async def _wait_all(q: TaskQueue, insts: list[FakeInst]) -> list[asyncio.Future[dict]]:
    futs = []
    for inst in insts:
        futs.append(asyncio.ensure_future(q.next_for(inst)))
        await asyncio.sleep(0)
    return futs


async def test_waiters_are_served_higher_agent_priority_first() -> None:
    low = FakeInst("low", takes("x", priority=0))
    high = FakeInst("high", takes("x", priority=10))
    _, q, _ = make(low, high)
    f_low, f_high = await _wait_all(q, [low, high])  # low waits longer, but high ranks first
    await q.add("x")
    await asyncio.wait_for(f_high, 5)
    assert not f_low.done()
    await q.add("x")
    await asyncio.wait_for(f_low, 5)


async def test_least_loaded_prefers_the_agent_holding_fewer_tasks() -> None:
    busy = FakeInst("busy", takes("x", concurrency=3))
    idle = FakeInst("idle", takes("x", concurrency=3))
    _, q, _ = make(busy, idle, allocation="least-loaded")
    await q.add("x")
    await q.add("x")
    assert await q.next_for(busy, timeout=0) and await q.next_for(busy, timeout=0)
    f_busy, f_idle = await _wait_all(q, [busy, idle])  # busy waited first, but holds two
    await q.add("x")
    await asyncio.wait_for(f_idle, 5)
    assert not f_busy.done()
    f_busy.cancel()


async def test_round_robin_takes_turns_regardless_of_load() -> None:
    agents = [FakeInst(n, takes("x", concurrency=5)) for n in ("a", "b", "c")]
    _, q, _ = make(*agents, allocation="round-robin")
    sup = q.sup
    futs = await _wait_all(q, agents)
    got: list[str] = []
    for _ in range(6):
        await q.add("x")
        leased = [(a, d) for a, d in sup.of("task") if d["state"] == "leased"]
        got.append(leased[-1][0])
        futs.append(asyncio.ensure_future(q.next_for(sup.instances[got[-1]])))  # back in line
        await asyncio.sleep(0)
    assert got == ["a", "b", "c", "a", "b", "c"]
    for f in futs:
        f.cancel()


def last_leased(sup: FakeSup) -> str | None:
    return [a for a, d in sup.of("task") if d["state"] == "leased"][-1]


async def test_strategy_is_read_at_allocation_time() -> None:
    from fleet.policy.schema import FleetSettings

    busy = FakeInst("busy", takes("x", concurrency=5))
    idle = FakeInst("idle", takes("x", concurrency=5))
    sup, q, _ = make(busy, idle, allocation="least-loaded")
    for _ in range(3):
        await q.add("x")
    assert await q.next_for(busy, timeout=0) and await q.next_for(busy, timeout=0)
    t = await q.next_for(idle, timeout=0)
    assert t
    await q.done(idle, t["id"])
    # busy holds 2 and was served longest ago; idle holds 0 and was served last.
    futs = await _wait_all(q, [busy, idle])
    await q.add("x")
    assert last_leased(sup) == "idle"  # least-loaded
    futs.append(asyncio.ensure_future(q.next_for(idle)))
    await asyncio.sleep(0)
    sup.book.fleet = FleetSettings.model_validate({"allocation": "round-robin"})  # a live edit of fleet.toml
    await q.add("x")
    assert last_leased(sup) == "busy"  # its turn, though it holds more
    for f in futs:
        f.cancel()


async def test_a_paused_agent_gets_nothing_until_it_runs_again() -> None:
    a = FakeInst("a", takes("x"))
    sup, q, _ = make(a)
    fut = asyncio.ensure_future(q.next_for(a))
    await asyncio.sleep(0)
    a.want_paused = True
    sup.set_state(a, S.PAUSED)
    await q.add("x")
    await asyncio.sleep(0)
    assert not fut.done()
    assert await q.next_for(a, timeout=0) is None
    a.want_paused = False
    sup.set_state(a, S.RUNNING)
    assert (await asyncio.wait_for(fut, 5))["kind"] == "x"


async def test_policy_change_applies_to_the_next_allocation() -> None:
    a = FakeInst("a", takes("x"))
    b = FakeInst("b", takes("y"))
    _, q, _ = make(a, b)
    fa, fb = await _wait_all(q, [a, b])
    b.policy = takes("x")  # as apply_book does: a new immutable policy object
    a.policy = takes()
    q.wake()
    await q.add("x")
    await asyncio.wait_for(fb, 5)
    assert not fa.done()
    fa.cancel()


async def test_done_only_from_the_holding_run_and_only_once() -> None:
    a = FakeInst("a", takes("x"))
    b = FakeInst("b", takes("x"))
    _, q, _ = make(a, b)
    await q.add("x")
    t = await q.next_for(a, timeout=0)
    assert t
    with pytest.raises(TaskError, match="not leased to this run of b"):
        await q.done(b, t["id"])
    a.run = type(a.run)(2, 2000, 0.0, 0.0)  # the same agent, a new process run
    with pytest.raises(TaskError, match="not leased to this run of a"):
        await q.done(a, t["id"])
    a.run = type(a.run)(1, 1001, 0.0, 0.0)
    assert (await q.done(a, t["id"], {"ok": True}))["state"] == "done"
    with pytest.raises(TaskError, match="unknown or finished"):
        await q.done(a, t["id"])
    with pytest.raises(TaskError):
        await q.fail(a, t["id"], "late")


async def test_fail_with_retry_requeues_until_the_limit_then_dead() -> None:
    a = FakeInst("a", takes("x"))
    sup, q, _ = make(a, task_max_attempts=3)
    added = await q.add("x")
    for attempt in (1, 2, 3):
        t = await q.next_for(a, timeout=0)
        assert t is not None and t["attempt"] == attempt
        await q.fail(a, t["id"], f"boom {attempt}")
    assert await q.next_for(a, timeout=0) is None
    assert states_of(sup, added.id) == ["queued", "leased", "queued", "leased", "queued", "leased", "dead"]
    dead = next(d for _, d in sup.of("task") if d["state"] == "dead")
    assert "3 of 3" in dead["reason"] and "boom 3" in dead["reason"]
    assert dead["attempt"] == 3


async def test_fail_without_retry_is_final() -> None:
    a = FakeInst("a", takes("x"))
    sup, q, _ = make(a)
    added = await q.add("x")
    t = await q.next_for(a, timeout=0)
    assert t
    assert (await q.fail(a, t["id"], "bad input", retry=False))["state"] == "failed"
    assert states_of(sup, added.id)[-1] == "failed"
    assert await q.next_for(a, timeout=0) is None


async def test_a_dead_agent_loses_its_leases_at_once_and_they_count() -> None:
    a = FakeInst("a", takes("x"))
    b = FakeInst("b", takes("x"))
    sup, q, _ = make(a, b, task_max_attempts=2)
    added = await q.add("x")
    t = await q.next_for(a, timeout=0)
    assert t
    fb = asyncio.ensure_future(q.next_for(b))
    await asyncio.sleep(0)
    sup.set_state(a, S.CRASHED, "exit code 1")
    got = await asyncio.wait_for(fb, 5)  # requeued and handed to the waiting agent at once
    assert got["id"] == added.id and got["attempt"] == 2
    sup.set_state(b, S.STOPPED, "stopped by operator")
    assert states_of(sup, added.id)[-1] == "dead"
    reason = next(d for _, d in sup.of("task") if d["state"] == "dead")["reason"]
    assert "b stopped" in reason and "2 attempts" in reason


async def test_fleet_shutdown_requeues_without_spending_an_attempt() -> None:
    a = FakeInst("a", takes("x"))
    sup, q, _ = make(a, task_max_attempts=1)
    added = await q.add("x")
    assert await q.next_for(a, timeout=0)
    sup.stopping = True
    sup.set_state(a, S.STOPPED, "fleet shutdown")
    [t] = q.snapshot()
    assert t["state"] == "queued" and t["attempt"] == 0 and t["id"] == added.id


async def test_an_offer_that_is_not_delivered_goes_back() -> None:
    a = FakeInst("a", takes("x"))
    _, q, _ = make(a)
    call = asyncio.ensure_future(q.next_for(a))
    await asyncio.sleep(0)
    await q.add("x")  # assigned to the waiter ...
    call.cancel()  # ... whose call is cancelled (the agent went away) before it resumed
    with pytest.raises(asyncio.CancelledError):
        await call
    [t] = q.snapshot()
    assert t["state"] == "queued" and t["attempt"] == 0


async def test_leases_of_live_runs_are_renewed_orphans_expire() -> None:
    a = FakeInst("a", takes("x"))
    _sup, q, clock = make(a, task_lease_s=30)
    await q.add("x")
    t = await q.next_for(a, timeout=0)
    assert t
    clock.t += 25
    q.tick()
    [rec] = q.snapshot(["leased"])
    assert rec["lease_expires"] == clock.t + 30  # renewed: the process lives
    a.run = type(a.run)(7, 7000, 0.0, 0.0)  # (as after a missed exit) a different run holds the name
    clock.t += 29
    q.tick()
    assert q.snapshot(["leased"])
    clock.t += 2
    q.tick()
    [rec] = q.snapshot()
    assert rec["state"] == "queued" and "expired" in rec["error"]


async def test_restart_takes_back_expired_leases_and_keeps_fresh_ones_until_they_expire(tmp_path: Path) -> None:
    a = FakeInst("a", takes("x", concurrency=2), run_id=1)
    store = await Store.open(tmp_path / "fleet.db")
    try:
        sup, q, clock = make(a, task_lease_s=30)
        sup.store = store
        q.store = store
        t1 = await q.add("x", {"n": 1})
        t2 = await q.add("x", {"n": 2})
        await q.add("x", {"n": 3})
        assert (await q.next_for(a, timeout=0))["id"] == t1.id
        clock.t += 20
        a.run = type(a.run)(2, 2000, 0.0, 0.0)
        assert (await q.next_for(a, timeout=0))["id"] == t2.id
        await store.flush()
    finally:
        await store.close()
    # The supervisor died. A new one starts 15 s later: t1's lease (leased at 0, 30 s) is up, t2's is not.
    store = await Store.open(tmp_path / "fleet.db")
    try:
        b = FakeInst("a", takes("x"), run_id=3)
        sup2, q2, clock2 = make(b, task_lease_s=30)
        sup2.store = store
        q2.store = store
        clock2.t = clock.t + 15
        await q2.load()
        by_id = {t["id"]: t for t in q2.snapshot()}
        assert by_id[t1.id]["state"] == "queued" and by_id[t1.id]["attempt"] == 1
        assert by_id[t2.id]["state"] == "leased"
        assert (await q2.next_for(b, timeout=0))["id"] == t1.id  # id order among equal priorities
        clock2.t += 16
        q2.tick()
        assert {t["id"]: t["state"] for t in q2.snapshot()}[t2.id] == "queued"
        rows = {r["id"]: r for r in await store.tasks()}
        assert rows[t2.id]["state"] == "queued" and rows[t1.id]["state"] == "leased"
        assert rows[t1.id]["attempt"] == 2 and rows[t1.id]["agent"] == "a"
    finally:
        await store.close()


async def test_bad_kind_and_priority_are_refused() -> None:
    _, q, _ = make()
    with pytest.raises(TaskError):
        await q.add("", None)
    with pytest.raises(TaskError):
        await q.add("x", None, "high")  # type: ignore[arg-type]


async def test_a_unique_task_is_queued_once_until_taken_across_restarts(tmp_path: Path) -> None:
    a = FakeInst("a", takes("review"))
    store = await Store.open(tmp_path / "fleet.db")
    try:
        sup, q, _ = make(a)
        sup.store = q.store = store
        first = await q.add("review", {"region": "north"}, unique=True)
        for _ in range(5):  # a periodic job whose takers are all busy or paused
            assert (await q.add("review", {"region": "north"}, unique=True)).id == first.id
        other = await q.add("review", {"region": "south"}, unique=True)
        assert other.id != first.id
        assert len(q.snapshot(["queued"])) == 2
        # The next run of the fleet loads the queue: still no duplicate.
        await store.flush()
        sup2, q2, _ = make(a)
        sup2.store = q2.store = store
        await q2.load()
        assert (await q2.add("review", {"region": "north"}, unique=True)).id == first.id
        # Once taken, the job may queue the next one.
        t = await q2.next_for(a, timeout=0)
        assert t is not None and t["id"] == first.id
        assert (await q2.add("review", {"region": "north"}, unique=True)).id != first.id
    finally:
        await store.close()
