"""The full-text indexer: its own thread at idle priority, small transactions, nothing unfindable meanwhile."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from fleet.store import Store, indexer

from .conftest import make_chunks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
async def test_the_indexer_runs_in_a_thread_of_its_own_at_nice_19(store: Store) -> None:
    store.append_logs(make_chunks("a", 1, 100, 10))
    await store.flush()
    await store.wait_indexed()  # it has run, so it has set its priority
    ix = store._writer.indexer  # type: ignore[union-attr]
    assert ix.is_alive() and ix.native_id != store._writer.native_id  # type: ignore[union-attr]
    assert os.getpriority(os.PRIO_PROCESS, ix.native_id) == 19
    assert os.getpriority(os.PRIO_PROCESS, store._writer.native_id) == os.getpriority(os.PRIO_PROCESS, 0)  # type: ignore[union-attr]
    assert store.stats()["indexer_priority"] == "nice 19"


async def test_a_search_midway_through_indexing_finds_every_line(store: Store, monkeypatch) -> None:
    """Part indexed, part not (held mid-way): every line is found, from the index or the tail scan."""
    monkeypatch.setattr(indexer, "FTS_BATCH_BYTES", 4096)  # many small transactions
    ix = store._writer.indexer  # type: ignore[union-attr]
    store.append_logs(make_chunks("early", 1, 2000, 50))
    await store.flush()
    await store.wait_indexed()
    ix.set_indexing(False)
    store.append_logs(make_chunks("late", 1, 2000, 50))
    await store.flush()
    stats = store.stats()
    assert 0 < stats["indexed_upto"] < stats["max_chunk_id"]
    hits = await store.search("payload", limit=10_000)
    assert sorted((ln.agent, ln.seq) for ln in hits) == sorted(
        [("early", s) for s in range(1, 2001)] + [("late", s) for s in range(1, 2001)]
    )
    ix.set_indexing(True)
    assert await store.wait_indexed() == store.stats()["max_chunk_id"]
    assert len(await store.search("payload", limit=10_000)) == 4000


async def test_the_indexer_never_takes_the_write_lock_while_logs_flow(store: Store) -> None:
    """Logs enqueued just now: the indexer waits for quiet (searches scan the tail meanwhile)."""
    ix = store._writer.indexer  # type: ignore[union-attr]
    store.append_logs(make_chunks("a", 1, 100, 10))
    await store.flush()
    store._writer.last_log_enqueue = time.monotonic() + 3600  # type: ignore[union-attr]  # logs "never" quiet
    with ix.cond:
        what, wait = ix._next()
    assert what == "wait" and 0 < wait <= indexer.FTS_MAX_LAG_S + 1
    assert [ln.seq for ln in await store.search("line 42 ")] == [42]


async def test_rows_deleted_before_they_were_indexed_are_skipped(store: Store) -> None:
    """Retention may delete rows the index has not reached: the indexer moves past them, it does not spin."""
    ix = store._writer.indexer  # type: ignore[union-attr]
    ix.set_indexing(False)
    store.append_logs(make_chunks("gone", 1, 300, 10))
    await store.flush()
    await store._write(lambda conn: conn.execute("DELETE FROM log_chunks"))
    ix.set_indexing(True)
    assert await store.wait_indexed() == store.stats()["max_chunk_id"]
    store.append_logs(make_chunks("kept", 1, 10, 10))
    await store.flush()
    assert await store.wait_indexed() == store.stats()["max_chunk_id"]
    assert [ln.agent for ln in await store.search("line 5 ")] == ["kept"]


def test_cpus_are_busy_only_when_others_fill_them_in_every_look() -> None:
    from fleet.store.cpubusy import CpuBusy, procs_running

    def reads(*values: int | None):
        it = iter(values)
        return lambda: next(it)

    assert CpuBusy(2, reads(3, 3, 3)).busy()  # two others runnable on two CPUs, each time
    assert not CpuBusy(2, reads(3, 2)).busy()  # one look found a CPU free
    assert not CpuBusy(2, reads(2)).busy()  # us and one agent on two CPUs
    assert not CpuBusy(2, reads(None)).busy()  # not Linux, or /proc unreadable
    if sys.platform.startswith("linux"):
        assert (procs_running() or 0) >= 1  # the caller is running


async def test_the_indexer_waits_while_every_cpu_is_wanted_unless_someone_waits(store: Store) -> None:
    """Agents fill the CPUs: no batch (it would take their time); a waiter for the index overrides."""
    ix = store._writer.indexer  # type: ignore[union-attr]
    store.append_logs(make_chunks("a", 1, 100, 10))
    await store.flush()
    await store.wait_indexed()
    ix.cpu.busy = lambda: True  # every CPU wanted by others
    batches = ix.batches
    store.append_logs(make_chunks("a", 101, 100, 10))
    await store.flush()
    store._writer.last_log_enqueue = 0.0  # type: ignore[union-attr]  # logs long quiet
    await asyncio.to_thread(_wait_until, lambda: ix.yields >= 2)
    assert ix.batches == batches and store.stats()["indexed_upto"] < store.stats()["max_chunk_id"]
    assert [ln.seq for ln in await store.search("line 142 ")] == [142]  # found in the tail meanwhile
    assert await store.wait_indexed() == store.stats()["max_chunk_id"]  # someone waits: indexed now


def _wait_until(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)  # polling a thread's counter from a test thread
