"""Crash safety: SIGKILL in the middle of a flood loses nothing that was flushed and leaves no gap."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path

from fleet.store import Store

from .test_logs import assert_gap_free, seq_ranges

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from fleet.records import LogChunk
    from fleet.store import Store

    async def main() -> None:
        store = await Store.open(Path(sys.argv[1]))
        seqs = {f"agent-{i}": 1 for i in range(4)}
        line = "x" * 80
        n = 0
        while True:
            for agent in seqs:
                count = 300
                text = "".join(f"{agent} {s} {line}\\n" for s in range(seqs[agent], seqs[agent] + count))
                store.append_logs([LogChunk(agent, 1, "stdout", seqs[agent], count, time.time(), text)])
                seqs[agent] += count
            n += 1
            if n % 20 == 0:
                await store.flush()
                print(" ".join(f"{a}={s - 1}" for a, s in seqs.items()), flush=True)
            else:
                await asyncio.sleep(0)

    asyncio.run(main())
    """
)


async def test_sigkill_mid_flood_leaves_clean_gap_free_db(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(db), stdout=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    flushed: dict[str, int] = {}
    for _ in range(8):  # let it flush a few times, then kill it mid-flood
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, "child died early"
        flushed = {k: int(v) for k, v in (p.split("=") for p in line.decode().split())}
    proc.send_signal(signal.SIGKILL)
    await proc.wait()

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    last = assert_gap_free(seq_ranges(db))
    for agent, n in flushed.items():
        assert last[agent] >= n, f"{agent}: flushed up to {n}, found only {last[agent]}"

    # The store reopens clean: what the segment held past the last committed row is cut,
    # every committed line reads back whole, numbering continues, the FTS index is consistent.
    store = await Store.open(db)
    assert await store.max_seqs() == last
    conn = sqlite3.connect(db)
    seg, end = conn.execute("SELECT seg, MAX(off + nbytes) FROM log_chunks GROUP BY seg ORDER BY seg DESC").fetchone()
    conn.close()
    assert (tmp_path / "logs" / f"{seg:08d}.log").stat().st_size == end
    for agent, n in last.items():
        lines = await store.tail(agent, n=n)
        assert [ln.seq for ln in lines] == list(range(1, n + 1))
        assert all(ln.text == f"{agent} {ln.seq} {'x' * 80}" for ln in lines)
    await store.wait_indexed()
    assert len(await store.search("agent-0 1 ")) == 1
    await store.close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO log_fts (log_fts) VALUES ('integrity-check')")
    conn.close()


EXIT_WITHOUT_CLOSE = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from fleet.records import LogChunk
    from fleet.store import Store

    async def main() -> None:
        store = await Store.open(Path(sys.argv[1]))
        for i in range(200):
            text = "".join(f"line {s}\\n" for s in range(i * 100 + 1, i * 100 + 101))
            store.append_logs([LogChunk("w", 1, "stdout", i * 100 + 1, 100, time.time(), text)])
        # no flush, no close: a normal exit must still commit everything enqueued

    asyncio.run(main())
    """
)


async def test_normal_exit_without_close_commits_the_queue(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    script = tmp_path / "child.py"
    script.write_text(EXIT_WITHOUT_CLOSE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script), str(db), env=env)
    assert await proc.wait() == 0
    assert assert_gap_free(seq_ranges(db)) == {"w": 20_000}
