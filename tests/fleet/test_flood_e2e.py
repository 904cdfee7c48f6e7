"""Floods through the whole fleet: backpressure instead of loss, and crash safety of what was flushed."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import write_fleet
from tests.fleet.test_cli_and_orphans import FLEET, wait_until

FLOOD = "import sys\nw = sys.stdout.write\nfor i in range({n}):\n    w(f'{{i:07d}} ' + 'x' * 90 + '\\n')\n"


async def test_a_flood_into_a_slow_disk_is_throttled_not_dropped(fleet_factory, monkeypatch):
    from fleet.store import Store

    real_open = Store.open
    slow_down = {"on": True}

    async def small_open(path, **kw):
        store = await real_open(path, high_water_bytes=256 * 1024, **kw)
        # A disk that needs 20 ms per commit while the test wants it slow.
        store._writer.delay_hook = lambda: time.sleep(0.02) if slow_down["on"] else None
        return store

    monkeypatch.setattr(Store, "open", small_open)
    n = 60_000
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "flood"
        command = ["{sys.executable}", "-c", {json.dumps(FLOOD.format(n=n))}]
        [agent.restart]
        mode = "never"
        """
    )
    store = f.sup.store
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["agent"] == "flood")
    # The store asks for pressure; the supervisor stops reading the pipe and the agent blocks.
    wait_deadline = time.monotonic() + 20
    while not f.sup.loghub.paused:
        assert time.monotonic() < wait_deadline, "pressure never applied"
        await f.events.wait_for(lambda e: True, 5)
    st = await f.call("status")
    assert st["log_pressure"] is True
    assert store.stats()["backlog_bytes"] < 4 * 1024 * 1024, "the backlog stays bounded"
    slow_down["on"] = False
    await f.events.state("flood", "exited", timeout=60)
    await asyncio.wait_for(f.sup.instances["flood"].output_drained(), 60)
    await store.flush()
    lines = await store.tail("flood", n=n + 10, streams=["stdout"])
    assert len(lines) == n
    assert [int(ln.text[:7]) for ln in lines] == list(range(n))
    assert store.stats()["dropped"] == 0


@pytest.mark.timeout(120)
def test_sigkill_mid_flood_keeps_everything_flushed_gap_free(tmp_path):
    d = write_fleet(
        tmp_path / "f",
        f"""
        [[agent]]
        name = "flood"
        command = ["{sys.executable}", "-c", {json.dumps(FLOOD.format(n=5_000_000))}]
        replicas = 3
        """,
    )
    proc = subprocess.Popen([*FLEET, "-C", str(d), "run", "-q"])
    db = d / ".fleet" / "fleet.db"

    def some_lines() -> bool:
        if not db.exists():
            return False
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                row = c.execute("select count(*) from sqlite_master where name like '%log%'").fetchone()
                return bool(row and row[0]) and _line_count(db) > 200_000
        except sqlite3.Error:
            return False

    wait_until(some_lines, 60, "the flood to reach the disk")
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    async def check() -> None:
        from fleet.store import Store

        store = await Store.open(db)  # opens clean, recovers the WAL
        try:
            seqs = await store.max_seqs()
            assert set(seqs) >= {"flood#1", "flood#2", "flood#3"}
            for agent in ("flood#1", "flood#2", "flood#3"):
                lines = await store.tail(agent, n=seqs[agent] + 1)
                numbers = [ln.seq for ln in lines]
                assert numbers == list(range(1, seqs[agent] + 1)), f"gap in {agent}"
        finally:
            await store.close()
        with sqlite3.connect(db) as c:
            assert c.execute("pragma integrity_check").fetchone()[0] == "ok"

    asyncio.run(check())


def _line_count(db) -> int:
    from fleet.store.readers import max_seqs, open_readonly

    conn = open_readonly(db)
    try:
        return sum(max_seqs(conn).values())
    finally:
        conn.close()



async def test_a_console_asking_for_a_low_log_rate_gets_at_most_that_and_every_other_line_counted(
    fleet_factory, tmp_path
):
    from fleet.control.client import SocketClient

    n = 40_000  # ~3.9 MB, read in well under the seconds it would take at the asked rate
    go = tmp_path / "go"
    stay = "sys.stdout.flush()\ntime.sleep(60)\n"  # no exit notice among the lines counted
    wait_go = f"import os, time\nwhile not os.path.exists({str(go)!r}):\n    time.sleep(0.01)\n"
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "flood"
        command = ["{sys.executable}", "-c", {json.dumps(wait_go + FLOOD.format(n=n) + stay)}]
        [agent.restart]
        mode = "never"
        """
    )
    rate = 32 * 1024
    console = await SocketClient.connect(f.runtime.server.path, origin="console")
    got = skipped = sent_bytes = biggest = 0
    try:
        # What ``SocketClient.subscribe(kinds, logs_max_rate=...)`` sends, awaited: subscribed before "go".
        answer = await console.call("subscribe", kinds=["logs", "logs_skipped"], logs_max_rate=rate)
        assert answer["logs_max_rate"] == rate
        events = console.events()
        t0 = time.monotonic()
        go.write_text("go")
        ev = await anext(events)
        while True:
            if ev["event"] == "logs" and ev["data"]["agent"] == "flood":
                got += ev["data"]["count"]
                sent_bytes += len(ev["data"]["text"])
                biggest = max(biggest, len(ev["data"]["text"]))
            elif ev["event"] == "logs_skipped":
                skipped += ev["data"]["agents"].get("flood", 0)
            if got + skipped >= n:
                break
            ev = await anext(events)
        elapsed = time.monotonic() - t0
    finally:
        await console.close()
    assert got + skipped == n  # every line either pushed or counted as skipped
    assert 0 < got < n
    assert sent_bytes <= rate * (1 + elapsed) + biggest
