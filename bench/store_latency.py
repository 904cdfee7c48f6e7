"""Read → on disk at an ordinary log rate (issue 10: within 200 ms).

Appends one line at a time, ``--rate`` lines per second, the way a quiet agent
prints, and times how long until another (read-only) connection sees it
committed — what ``fleet logs`` from a second terminal would see.

    python -m bench.store_latency [--lines 200] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from fleet.records import LogChunk
from fleet.store import Store, open_readonly


async def main(lines: int, rate: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fleet.db"
        store = await Store.open(db)
        conn = open_readonly(db)
        lat: list[float] = []
        try:
            for i in range(1, lines + 1):
                t0 = time.perf_counter()
                store.append_logs([LogChunk("quiet", 1, "stdout", i, 1, time.time(), f"tick {i}\n")])
                # Latency as another process sees it: poll the other connection (it has no event to await).
                while conn.execute("SELECT max_seq FROM log_agents WHERE agent = 'quiet'").fetchone() != (i,):  # noqa: ASYNC110
                    await asyncio.sleep(0.0005)
                lat.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
        finally:
            conn.close()
            await store.close()
    lat.sort()
    print(f"{lines} lines at {rate:g}/s: read -> committed, visible to another connection:")
    print(f"  median {statistics.median(lat):.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms, max {lat[-1]:.1f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20.0)
    a = ap.parse_args()
    asyncio.run(main(a.lines, a.rate))
