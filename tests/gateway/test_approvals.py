"""Approvals: granted, denied, timed out; unknown and double decisions are errors."""

from __future__ import annotations

import asyncio

import pytest

from fleet.errors import FleetError
from fleet.gateway import ApprovalManager, InMemoryApprovalStore
from fleet.records import Event


class Bus:
    """Collects published events and lets a test await the next one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._queue: asyncio.Queue[Event] = asyncio.Queue()

    def __call__(self, ev: Event) -> None:
        self.events.append(ev)
        self._queue.put_nowait(ev)

    async def next(self) -> Event:
        return await asyncio.wait_for(self._queue.get(), 5)


@pytest.fixture
def store() -> InMemoryApprovalStore:
    return InMemoryApprovalStore()


@pytest.fixture
def bus() -> Bus:
    return Bus()


async def test_approval_granted(store: InMemoryApprovalStore, bus: Bus) -> None:
    mgr = ApprovalManager(store, bus, clock=lambda: 100.0)
    task = asyncio.create_task(
        mgr.request("mailer", "send_email", {"to": "x@example.com"}, 30, policy_version=4)
    )
    ev = await bus.next()
    assert ev.kind == "approval" and ev.agent == "mailer" and ev.data["state"] == "pending"
    assert ev.data["expires_at"] == 130.0 and ev.data["policy_version"] == 4
    assert [p["id"] for p in mgr.pending()] == [ev.data["id"]]
    record = await mgr.decide(ev.data["id"], True, by="operator")
    assert record["state"] == "approved"
    assert await task == (True, "", "operator")
    decided = await bus.next()
    assert decided.data["state"] == "approved" and decided.data["decided_by"] == "operator"
    assert store.rows[ev.data["id"]]["state"] == "approved"
    assert mgr.pending() == []


async def test_approval_denied_with_reason(store: InMemoryApprovalStore, bus: Bus) -> None:
    mgr = ApprovalManager(store, bus)
    task = asyncio.create_task(mgr.request("pub", "publish_post", {}, 30))
    ev = await bus.next()
    await mgr.decide(ev.data["id"], False, by="cli", reason="not on a Friday")
    assert await task == (False, "not on a Friday", "cli")
    assert store.rows[ev.data["id"]]["state"] == "denied"
    assert store.rows[ev.data["id"]]["reason"] == "not on a Friday"


async def test_approval_times_out_to_deny(store: InMemoryApprovalStore, bus: Bus) -> None:
    mgr = ApprovalManager(store, bus)
    approved, reason, by = await mgr.request("pub", "publish_post", {}, 0.05)
    assert (approved, by) == (False, "timeout") and "0.05" in reason
    (approval_id,) = store.rows
    assert store.rows[approval_id]["state"] == "expired"
    assert [e.data["state"] for e in bus.events] == ["pending", "expired"]
    with pytest.raises(FleetError, match="already decided"):
        await mgr.decide(approval_id, True, by="late operator")


async def test_unknown_and_double_decisions(store: InMemoryApprovalStore, bus: Bus) -> None:
    mgr = ApprovalManager(store, bus)
    with pytest.raises(FleetError, match="no pending approval with id 99"):
        await mgr.decide(99, True, by="x")
    task = asyncio.create_task(mgr.request("a", "send_email", {}, 30))
    ev = await bus.next()
    await mgr.decide(ev.data["id"], True, by="x")
    with pytest.raises(FleetError, match="already decided"):
        await mgr.decide(ev.data["id"], False, by="y")
    assert await task == (True, "", "x")


async def test_cancelled_request_expires(store: InMemoryApprovalStore, bus: Bus) -> None:
    mgr = ApprovalManager(store, bus)
    task = asyncio.create_task(mgr.request("a", "send_email", {}, 30))
    ev = await bus.next()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    closed = await bus.next()
    assert closed.data["state"] == "expired" and closed.data["decided_by"] == "cancelled"
    assert store.rows[ev.data["id"]]["state"] == "expired"
    assert mgr.pending() == []


async def test_async_publish_is_awaited(store: InMemoryApprovalStore) -> None:
    seen: list[str] = []

    async def publish(ev: Event) -> None:
        seen.append(ev.data["state"])

    mgr = ApprovalManager(store, publish)
    assert (await mgr.request("a", "x", {}, 0.01))[2] == "timeout"
    assert seen == ["pending", "expired"]
