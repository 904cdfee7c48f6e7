"""Every store write error keeps the writer alive: backpressure, retries, resume, nothing lost.

A log segment write that failed with ENOSPC used to kill the writer thread
(only ``sqlite3.OperationalError`` was retried). Errors are injected here at
the two places a batch touches the disk (the segment ``pwritev`` and SQLite's
commit); ``tests/faults/test_disk_full.py`` fills a real file system.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import time
from pathlib import Path

import pytest

from fleet.records import Event
from fleet.store import Store
from fleet.store import segments as segments_module
from fleet.store.readers import tail

from .conftest import make_chunks

TIMEOUT = 20


class Disk:
    """A switch in front of the segment writes: ``broken`` makes them fail with ``errno``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
        self.broken = False
        self.code = code
        self.attempts = 0
        self._wanted: tuple[int, asyncio.Event, asyncio.AbstractEventLoop] | None = None
        real = segments_module._pwritev

        def pwritev(fd, buffers, offset):  # type: ignore[no-untyped-def]
            if self.broken:
                self.attempts += 1
                wanted = self._wanted
                if wanted is not None and self.attempts >= wanted[0]:
                    wanted[2].call_soon_threadsafe(wanted[1].set)
                raise OSError(self.code, "injected")
            return real(fd, buffers, offset)

        monkeypatch.setattr(segments_module, "_pwritev", pwritev)

    async def retried(self, more: int) -> None:
        """Resolve once the writer has tried ``more`` more times."""
        event = asyncio.Event()
        self._wanted = (self.attempts + more, event, asyncio.get_running_loop())
        await asyncio.wait_for(event.wait(), TIMEOUT)


async def _health(store: Store) -> asyncio.Queue[str]:
    q: asyncio.Queue[str] = asyncio.Queue()
    store.on_health(q.put_nowait)
    return q


def _texts(db: Path, agent: str, n: int) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [line.text for line in tail(conn, agent, n)]
    finally:
        conn.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EACCES], ids=["ENOSPC", "EIO", "EACCES"])
async def test_segment_write_errors_pause_retry_and_resume(tmp_path: Path, monkeypatch, code: int) -> None:
    disk = Disk(monkeypatch, code)
    store = await Store.open(tmp_path / "fleet.db", high_water_bytes=1 << 20)
    health = await _health(store)
    pressure: list[bool] = []
    store.on_pressure(pressure.append)
    store.append_logs(make_chunks("a", 1, 1000, 100))
    await store.flush()

    disk.broken = True
    store.append_logs(make_chunks("a", 1001, 1000, 100))
    error = await asyncio.wait_for(health.get(), TIMEOUT)
    name = errno.errorcode[code]
    assert name in error
    assert store.pressure, "pipes must be paused while the disk refuses writes"
    h = store.health()
    assert h["ok"] is False and name in h["error"] and h["since"] <= time.time()
    assert store._writer is not None and store._writer.is_alive()
    # A small write meanwhile waits for the disk instead of failing.
    event = asyncio.ensure_future(store.add_event(Event("fleet", None, {"message": "during"}, 0)))
    await disk.retried(2)  # it keeps retrying (with back-off)
    assert not event.done()

    disk.broken = False
    assert await asyncio.wait_for(health.get(), TIMEOUT) == ""
    await asyncio.wait_for(event, TIMEOUT)
    store.append_logs(make_chunks("a", 2001, 1000, 100))
    await store.flush()
    assert store.health()["ok"] is True and not store.pressure
    assert pressure[-1] is False and True in pressure
    stats = store.stats()
    assert stats["lines_written"] == 3000 and stats["dropped"] == 0 and stats["unwritten"] == 0
    assert await store.close() == 0
    texts = _texts(tmp_path / "fleet.db", "a", 5000)
    assert texts == [f"a line {s} payload-{s % 97}" for s in range(1, 3001)]


async def test_sqlite_full_is_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "fleet.db")
    health = await _health(store)
    w = store._writer
    assert w is not None
    failing = True

    def commit_hook() -> None:
        if failing:
            raise sqlite3.OperationalError("database or disk is full")

    w.delay_hook = commit_hook
    store.append_logs(make_chunks("b", 1, 500, 50))
    assert "disk is full" in await asyncio.wait_for(health.get(), TIMEOUT)
    failing = False
    assert await asyncio.wait_for(health.get(), TIMEOUT) == ""
    await store.flush()
    assert await store.max_seqs() == {"b": 500}
    # The failed attempts took row ids that were rolled back: the index still covers every row.
    await store.wait_indexed()
    expected = [s for s in range(1, 501) if "payload-5" in f"b line {s} payload-{s % 97}"]
    assert [line.seq for line in await store.search("payload-5", agent="b")] == expected
    await store.close()


async def test_close_while_the_disk_is_full_ends_within_grace_and_counts_the_loss(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    disk = Disk(monkeypatch, errno.ENOSPC)
    store = await Store.open(tmp_path / "fleet.db")
    health = await _health(store)
    store.append_logs(make_chunks("c", 1, 100, 10))
    await store.flush()
    disk.broken = True
    store.append_logs(make_chunks("c", 101, 700, 70))
    await asyncio.wait_for(health.get(), TIMEOUT)
    t0 = time.monotonic()
    unwritten = await asyncio.wait_for(store.close(grace_s=0.5), TIMEOUT)
    assert time.monotonic() - t0 < 5
    assert unwritten == 700
    assert "700 log lines could not be written (disk full (ENOSPC))" in caplog.text
    assert await store.close() == 0  # idempotent
    assert _texts(tmp_path / "fleet.db", "c", 1000)[-1] == "c line 100 payload-3"
