"""``fleet status`` latency while 20 agents flood their logs.

Run by hand: ``python -m bench.status_under_flood [--lines 200000]``. Starts a
headless ``fleet run`` with the flood writers of ``python -m bench`` (20 x
~100-byte lines, released together by a "go" file once all are up), polls ``status``
over the control socket every 20 ms from this process while they write, and
prints the latency distribution, the time until every line was persisted and
how much later the full-text index held all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import FLOOD_PY, neutral_workload_env, python
from fleet.control.client import SocketClient
from fleet.errors import FleetError
from fleet.store import DB_NAME, open_readonly, readers

INTERVAL = 0.02


async def main(lines: int, agents: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "policies").mkdir()
        (d / "flood.py").write_text(FLOOD_PY)
        go = d / "go"
        argv = [python(), "flood.py", "{i}", str(lines), str(go)]
        (d / "fleet.toml").write_text("".join(
            f'[[agent]]\nname = "flood{i:02d}"\ncommand = {json.dumps(argv).replace("{i}", str(i))}\n'
            '[agent.restart]\nmode = "never"\n\n' for i in range(agents)))
        # Its own session, as `fleet` starts it: the supervisor does not share this
        # process's CPU share (Linux autogroups), and the poller is a separate client.
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "fleet.cli", "-C", str(d), "run", "-q",
                                                    start_new_session=True)
        sock = d / ".fleet" / "control.sock"
        try:
            client = None
            while client is None:  # the socket file appears before the server listens on it
                try:
                    client = await SocketClient.connect(sock)
                except (OSError, FleetError):
                    if proc.returncode is not None:
                        raise SystemExit("fleet run exited") from None
                    await asyncio.sleep(0.02)
            while len(list(d.glob("go.ready.*"))) < agents:  # noqa: ASYNC110, ASYNC240 - the writers signal by file
                await asyncio.sleep(0.01)
            go.write_text("go")
            total = lines * agents
            lat: list[float] = []
            slow: list[tuple[float, float]] = []
            t0 = time.perf_counter()
            done_at = None
            while time.perf_counter() - t0 < 120:
                t = time.perf_counter()
                st = await client.call("status")
                lat.append(time.perf_counter() - t)
                if lat[-1] > 0.05:
                    slow.append((round(t - t0, 2), round(lat[-1] * 1000, 1)))
                persisted = sum(a["lines"] for a in st["agents"])
                if persisted >= total:
                    done_at = time.perf_counter() - t0
                    break
                await asyncio.sleep(INTERVAL)
            searchable_at = None
            if done_at is not None:  # the index catches up behind the flood: how long until it has all of it?
                conn = open_readonly(sock.parent / DB_NAME)
                try:
                    while time.perf_counter() - t0 < done_at + 120:
                        top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM log_chunks").fetchone()[0]
                        if readers.indexed_upto(conn) >= top:
                            searchable_at = time.perf_counter() - t0
                            break
                        await asyncio.sleep(0.05)
                finally:
                    conn.close()
            await client.close()
        finally:  # never leave a fleet running on a deleted directory
            (d / "go.stop").write_text("1")
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()
        lat.sort()
        print(f"{agents} agents x {lines} lines: {len(lat)} status calls during the flood")
        print(f"  status latency: median {statistics.median(lat) * 1000:.1f} ms, "
              f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")
        print(f"  calls over 50 ms (at s, ms): {slow[:20]}")
        print(f"  every line read and numbered after {done_at:.2f} s" if done_at else "  flood did not finish")
        if done_at and searchable_at:
            print(f"  every line in the full-text index {searchable_at - done_at:.2f} s later")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--agents", type=int, default=20)
    a = ap.parse_args()
    neutral_workload_env()
    asyncio.run(main(a.lines, a.agents))
