"""Events, usage, approvals, audit, policy versions round-trip; read-only access; retention."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from fleet.records import Event, LogChunk, UsageRecord
from fleet.store import Store, StoreError, open_readonly, readers

from .conftest import make_chunks


async def test_events_round_trip(store: Store) -> None:
    a = Event("state", "w1", {"from": "starting", "to": "running"})
    id_a = await store.add_event(a)
    assert a.id == id_a and a.ts > 0
    await store.add_event(Event("alert", "w2", {"why": "stalled"}, ts=123.0))
    await store.add_event(Event("restart", "w1", {"n": 1}))
    evs = await store.events()
    assert [e.kind for e in evs] == ["state", "alert", "restart"]  # newest last
    assert evs[0].data == {"from": "starting", "to": "running"}
    assert [e.kind for e in await store.events(kinds=["alert", "restart"])] == ["alert", "restart"]
    assert [e.kind for e in await store.events(agent="w1")] == ["state", "restart"]
    assert [e.kind for e in await store.events(n=1)] == ["restart"]
    assert [e.kind for e in await store.events(since=1000.0)] == ["state", "restart"]


async def test_usage_round_trip(store: Store) -> None:
    now = time.time()
    recs = [
        UsageRecord("a", "gpt-4o-mini", 100, 20, 0.01, 0.5, "ok", now - 100),
        UsageRecord("a", "gpt-4o-mini", 50, 0, 0.0, 2.0, "timeout", now, error="deadline"),
        UsageRecord("b", "fleet/demo", 10, 5, 0.0, 0.1, "denied", now, policy_version=3),
    ]
    for r in recs:
        await store.add_usage(r)
    totals = await store.usage_totals()
    assert totals["a"] == {"tokens_in": 150, "tokens_out": 20, "cost_usd": 0.01, "calls": 2, "errors": 1}
    assert totals["b"]["errors"] == 0 and totals["b"]["calls"] == 1
    assert (await store.usage_totals(since=now - 10))["a"]["calls"] == 1
    assert await store.recent_usage() == recs
    assert await store.recent_usage("a", n=1) == [recs[1]]


async def test_approvals_round_trip(store: Store) -> None:
    i1 = await store.add_approval("a", "send_email", {"to": "x@example.com"}, 900, 4)
    i2 = await store.add_approval("b", "publish_post", {}, 60, 4)
    pending = await store.approvals()
    assert [p["id"] for p in pending] == [i1, i2]
    assert pending[0]["details"] == {"to": "x@example.com"} and pending[0]["status"] == "pending"
    await store.decide_approval(i1, "approved", "console")
    await store.decide_approval(i2, "denied", "cli", "not today")
    assert await store.approvals() == []
    done = {p["id"]: p for p in await store.approvals(pending_only=False)}
    assert done[i2]["status"] == "denied" and done[i2]["decided_by"] == "cli"
    assert done[i2]["reason"] == "not today" and done[i2]["decided_at"] is not None
    with pytest.raises(StoreError, match="already approved"):
        await store.decide_approval(i1, "expired", "timer")  # first decision wins
    with pytest.raises(StoreError, match="no approval"):
        await store.decide_approval(999, "denied", "cli")
    with pytest.raises(ValueError):
        await store.decide_approval(i1, "maybe", "cli")
    # A failed small write does not disturb logs committed in the same batch.
    store.append_logs([LogChunk("a", 1, "stdout", 1, 1, time.time(), "still here\n")])
    with pytest.raises(StoreError):
        await store.decide_approval(i1, "denied", "cli")
    assert [ln.text for ln in await store.tail("a")] == ["still here"]


async def test_audit_and_policy_versions(store: Store) -> None:
    await store.audit("pause", "w1", "console", {"all": False})
    await store.audit("approve", "7", "cli")
    log = await store.audit_log()
    assert [(x["action"], x["origin"], x["details"]) for x in log] == [
        ("pause", "console", {"all": False}),
        ("approve", "cli", {}),
    ]
    assert await store.latest_policy_version() == 0
    assert await store.add_policy_version("h1", "a = 1", "") == 1
    assert await store.add_policy_version("h2", "a = 2", "-a = 1\n+a = 2") == 2
    assert await store.latest_policy_version() == 2
    assert await store.policy_version_hash(2) == "h2"
    assert await store.policy_version_hash(3) is None
    assert [v["content_hash"] for v in await store.policy_versions()] == ["h1", "h2"]


async def test_readonly_access_with_no_fleet_running(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    store = await Store.open(db)
    store.append_logs(make_chunks("w", 1, 30, 10))
    await store.add_event(Event("state", "w", {}))
    await store.close()
    # A clean close checkpoints and removes the WAL: the main file alone holds everything.
    assert not await asyncio.to_thread(Path(f"{db}-wal").exists)
    await asyncio.to_thread(lambda: [Path(f"{db}{s}").unlink(missing_ok=True) for s in ("-wal", "-shm")])
    ro = await Store.open(tmp_path, readonly=True)  # a directory means <dir>/fleet.db
    assert len(await ro.tail("w")) == 30
    assert [ln.seq for ln in await ro.search("line 7 ")] == [7]
    assert len(await ro.events()) == 1
    with pytest.raises(StoreError):
        ro.append_logs(make_chunks("w", 31, 1, 1))
    with pytest.raises(StoreError):
        await ro.audit("x", "y", "cli")
    await ro.close()
    conn = open_readonly(db)
    assert readers.max_seqs(conn) == {"w": 30}
    conn.close()
    with pytest.raises(StoreError):
        await Store.open(tmp_path / "missing.db", readonly=True)


async def test_retention_by_age_runs_in_background(store: Store) -> None:
    old = time.time() - 10 * 86400
    store.append_logs(make_chunks("w", 1, 400, 50, ts=old))
    store.append_logs(make_chunks("w", 401, 100, 50))
    await store.add_event(Event("state", "w", {}, ts=old))
    await store.add_event(Event("state", "w", {"new": True}))
    await store.flush()
    await store.wait_indexed()  # old rows are in the FTS index: retention must remove them there too
    store.set_retention(days=1)
    retention = store.apply_retention()
    # Writers are not blocked meanwhile.
    store.append_logs(make_chunks("w", 501, 10, 10))
    await store.flush()
    assert await retention == 400
    lines = await store.tail("w", 10_000)
    assert [ln.seq for ln in lines] == list(range(401, 511))
    assert await store.search("line 5 ") == []
    assert [ln.seq for ln in await store.search("line 405 ")] == [405]
    assert [e.data for e in await store.events()] == [{"new": True}]
    assert await store.max_seqs() == {"w": 510}  # numbering still continues
    await store.close()
    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO log_fts (log_fts) VALUES ('integrity-check')")
    conn.close()


async def test_retention_by_size(store: Store) -> None:
    store.append_logs(make_chunks("w", 1, 20_000, 500))  # ~700 KB
    await store.flush()
    store.set_retention(mb=0.2)
    assert await store.apply_retention() > 0
    conn = open_readonly(store.path)
    kept = conn.execute("SELECT sum(nbytes) FROM log_chunks").fetchone()[0]
    conn.close()
    assert 0.15 * 2**20 < kept <= 0.2 * 2**20
    lines = await store.tail("w", 100_000)
    assert lines[-1].seq == 20_000 and lines[0].seq > 1
    assert [ln.seq for ln in lines] == list(range(lines[0].seq, 20_001))
