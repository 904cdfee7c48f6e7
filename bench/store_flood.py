"""Benchmark (a): the store alone ingesting a flood of 20 x 200 000 lines of ~90 bytes.

Target from issue 10: supervisord persists this flood in ~2.2 s on this 2-core
machine; the fleet must persist every line in no more time, have it all
searchable through FTS within 5 s after the last line, and keep the event loop
answering within 100 ms. Prints wall time until committed, lines/s, CPU, peak
RSS, lines lost (counted back from the database), max loop lag, FTS catch-up.

    python -m bench.store_flood [--agents 20] [--lines 200000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import tempfile
import time
from pathlib import Path

from bench.store_common import feed, make_pool, marker
from fleet.store import Store, open_readonly


def count_back(db: Path, agents: int, lines_per_agent: int) -> tuple[int, int]:
    """(lines lost, agents with a gap) from a fresh read-only connection."""
    conn = open_readonly(db)
    lost = 0
    gaps = 0
    per_agent: dict[str, list[tuple[int, int]]] = {}
    for agent, first, count in conn.execute("SELECT agent, first_seq, count FROM log_chunks ORDER BY agent, first_seq"):
        per_agent.setdefault(agent, []).append((first, count))
    for i in range(agents):
        rows = per_agent.get(f"agent-{i:02d}", [])
        nxt = 1
        for first, count in rows:
            if first != nxt:
                gaps += 1
            nxt = first + count
        lost += lines_per_agent - sum(c for _, c in rows)
    conn.close()
    return lost, gaps


async def run(agents: int, lines: int, directory: Path) -> None:
    db = directory / "fleet.db"
    pool, per = make_pool()
    store = await Store.open(db)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    res = await feed(store, agents, lines, pool, per)
    t_last = time.perf_counter()
    await store.flush()
    t_committed = time.perf_counter()
    wall = t_committed - t0
    # Search for the last line right away (found by the unindexed-tail scan).
    last = marker(f"agent-{agents - 1:02d}")
    ts = time.perf_counter()
    hits = await store.search(last)
    t_search_now = time.perf_counter() - ts
    # Now wait until the FTS index alone finds it (poll a separate read-only connection).
    ro = open_readonly(db)
    while True:
        row = ro.execute("SELECT count(*) FROM log_fts WHERE log_fts MATCH ?", (f'"{last}"',)).fetchone()
        if row[0]:
            break
        await asyncio.sleep(0.02)
    t_fts = time.perf_counter()
    ro.close()
    cpu = time.process_time() - cpu0
    stats = store.stats()
    await store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lost, gaps = count_back(db, agents, lines)
    size_mb = await asyncio.to_thread(lambda: sum(f.stat().st_size for f in directory.iterdir()) / 1e6)
    total = agents * lines
    print(f"flood: {agents} agents x {lines} lines of ~90 B = {total} lines, {res.chunks} chunks")
    print(f"  fed (append_logs) in      {res.feed_s:6.2f} s   (pressure pauses: {res.pauses})")
    print(f"  wall until all committed  {wall:6.2f} s   -> {total / wall / 1e6:.2f} M lines/s")
    print(f"  CPU (process)             {cpu:6.2f} s")
    print(f"  peak RSS                  {rss_mb:6.0f} MB")
    print(f"  max event-loop lag        {res.max_lag_s * 1000:6.1f} ms")
    dropped = stats["dropped"]
    print(f"  lines lost                {lost:6d}     agents with a seq gap: {gaps}   dropped: {dropped}")
    print(f"  search(last line) at once {t_search_now * 1000:6.1f} ms  found={len(hits)}")
    print(f"  FTS finds last line after {t_fts - t_last:6.2f} s after the last append")
    print(f"  database size             {size_mb:6.0f} MB  rows={stats['rows']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--dir", type=Path, default=None, help="where to put fleet.db (default: a temp dir)")
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
