"""Benchmark (b): reading history from a 5 000 000-line database.

Issue 10's targets: the last 1 000 lines of one agent among 5 M stored lines in
under 50 ms, a full-text search in under 200 ms. The database is built with the
fast path (``append_logs`` of 64 KiB chunks) and left fully indexed; timings are
medians over repeated calls through ``Store`` (reader thread included), plus the
same calls on a read-only connection as the CLI would make them.

    python -m bench.store_query [--agents 20] [--lines 250000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.store_common import feed, make_pool, marker
from fleet.store import Store, open_readonly, readers


async def timed(fn: Callable[[], Awaitable[Any]], reps: int = 15) -> tuple[float, Any]:
    out: Any = None
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


async def run(agents: int, lines: int, directory: Path) -> None:
    db = directory / "fleet.db"
    pool, per = make_pool()
    store = await Store.open(db)
    t0 = time.perf_counter()
    await feed(store, agents, lines, pool, per)
    await store.flush()
    t_build = time.perf_counter() - t0
    await store.wait_indexed()
    t_indexed = time.perf_counter() - t0
    total = agents * lines
    rows = store.stats()["rows"]
    print(f"database: {total} lines in {rows} rows; built in {t_build:.2f} s, indexed at {t_indexed:.2f} s")
    mid = f"agent-{agents // 2:02d}"
    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("tail(agent, 1000)", lambda: store.tail(mid, 1000)),
        ("tail(agent, 1000, before_seq=mid)", lambda: store.tail(mid, 1000, before_seq=lines // 2)),
        ("tail(None, 1000) all agents by ts", lambda: store.tail(None, 1000)),
        ("tail(agent, 1000, streams=[stderr])", lambda: store.tail(mid, 1000, streams=["stderr"])),
        ("search(rare: one line)", lambda: store.search(marker(mid))),
        ("search(rare, agent=...)", lambda: store.search(marker(mid), agent=mid)),
        ("search(common word, limit 500)", lambda: store.search("upstream")),
        ("search(two words, limit 500)", lambda: store.search("cache miss")),
        ("search(absent word)", lambda: store.search("nosuchwordanywhere")),
        ("search(id prefix 'id=0a')", lambda: store.search("id=0a")),
        ("search(no token: full scan, absent)", lambda: store.search("->>")),
    ]
    for name, fn in cases:
        med, out = await timed(fn, reps=3 if "full scan" in name else 15)
        print(f"  {name:40s} {med * 1000:8.1f} ms  ({len(out)} lines)")
    await store.close()
    conn = open_readonly(db)
    for name, call in (
        ("tail", lambda: readers.tail(conn, mid, 1000)),
        ("search", lambda: readers.search(conn, marker(mid))),
    ):
        t = time.perf_counter()
        got = call()
        ms = (time.perf_counter() - t) * 1000
        print(f"  read-only connection (CLI) {name:12s} {ms:8.1f} ms  ({len(got)} lines, first call)")
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--lines", type=int, default=250_000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("fleet.db", "fleet.db-wal", "fleet.db-shm"):
        (directory / name).unlink(missing_ok=True)
    try:
        asyncio.run(run(args.agents, args.lines, directory))
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
