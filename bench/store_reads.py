"""Benchmark: one small read through ``Store`` (the supervisor's async face), against ``aiosqlite``.

Why it exists: ``aiosqlite`` was declared and never used. It runs each
connection's statements on a thread of its own and hands results back to the
loop, which is what ``Store`` does for its synchronous readers. This measures
``events(n=20, agent=...)`` over 2000 events both ways (the same SQL, the same
records built); ``aiosqlite`` is compared only if it is installed
(``pip install aiosqlite``: it is not a dependency of the fleet).

    python -m bench.store_reads [--reads 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fleet.records import Event
from fleet.store import Store

SQL = "SELECT id, ts, kind, agent, data FROM events WHERE 1 AND agent = ? ORDER BY id DESC LIMIT ?"


async def _time(reads: int, fn: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    times = []
    for _ in range(reads):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


async def main(reads: int) -> None:
    d = Path(tempfile.mkdtemp())
    store = await Store.open(d / "fleet.db")
    for i in range(2000):
        await store.add_event(Event("state", f"a{i % 20}", {"state": "running", "i": i}, time.time()))
    await store.flush()
    runs: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("Store (reader thread)", lambda: store.events(20, None, "a3"))
    ]
    conn: Any = None
    try:
        import aiosqlite
    except ImportError:
        print("aiosqlite is not installed: Store only")
    else:
        conn = await aiosqlite.connect(f"file:{d / 'fleet.db'}?mode=ro", uri=True)

        async def theirs() -> list[Event]:
            rows = list(await conn.execute_fetchall(SQL, ("a3", 20)))
            rows.reverse()
            return [Event(kind=k, agent=a, data=json.loads(x), ts=ts, id=i) for i, ts, k, a, x in rows]

        runs.append(("aiosqlite", theirs))
    for name, fn in runs * 2:  # interleaved, twice: the machine may be shared
        median, p95 = await _time(reads, fn)
        print(f"{name:24s} median {median * 1e6:6.0f} µs   p95 {p95 * 1e6:6.0f} µs")
    if conn is not None:
        await conn.close()
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reads", type=int, default=2000)
    asyncio.run(main(parser.parse_args().reads))
