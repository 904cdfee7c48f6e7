"""Back-pressure: a slow disk raises pressure, memory stays bounded, nothing is lost."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from fleet.store import Store

from .conftest import make_chunks


async def test_pressure_flips_with_slow_writer_and_memory_stays_bounded(tmp_path: Path) -> None:
    high = 256 * 1024
    store = await Store.open(tmp_path / "fleet.db", high_water_bytes=high, low_water_bytes=64 * 1024)
    writer = store._writer
    assert writer is not None
    gate = threading.Event()
    writer.delay_hook = gate.wait  # every commit waits for the "disk"
    flips: list[bool] = []
    paused = asyncio.Event()
    flowing = asyncio.Event()
    flowing.set()

    def on_pressure(on: bool) -> None:
        flips.append(on)
        if on:
            paused.set()
            flowing.clear()
        else:
            flowing.set()

    store.on_pressure(on_pressure)
    chunks = make_chunks("flood", 1, 40_000, 200)  # ~8 KiB per chunk, ~1.3 MB in all
    chunk_max = max(len(c.text) for c in chunks)
    peak = 0
    i = 0
    # Producer that honours pressure, like the supervisor pausing its pipes.
    while i < len(chunks):
        if store.pressure:
            await asyncio.sleep(0)  # let the pressure callback run, as the loop would
            await paused.wait()
            if not gate.is_set():
                # First episode: the "disk" is stuck, so the backlog must sit still.
                assert store.stats()["lines_written"] == 0
                writer.delay_hook = None
                gate.set()  # the disk catches up
            await flowing.wait()
            continue
        store.append_logs([chunks[i]])
        i += 1
        peak = max(peak, store.stats()["backlog_bytes"])
    await store.flush()
    assert flips[:2] == [True, False]
    assert peak <= high + chunk_max
    assert store.stats()["lines_written"] == 40_000
    assert store.stats()["dropped"] == 0
    assert await store.max_seqs() == {"flood": 40_000}
    await store.close()


async def test_overflow_past_hard_limit_is_counted_and_recorded(tmp_path: Path) -> None:
    store = await Store.open(
        tmp_path / "fleet.db", high_water_bytes=16 * 1024, low_water_bytes=1024, hard_limit_bytes=64 * 1024
    )
    writer = store._writer
    assert writer is not None
    gate = threading.Event()
    writer.delay_hook = gate.wait
    chunks = make_chunks("rude", 1, 5_000, 100)
    store.append_logs(chunks[:1])
    for c in chunks[1:]:  # ignores pressure
        store.append_logs([c])
    dropped = store.stats()["dropped"]
    assert dropped > 0
    gate.set()
    await store.flush()
    writer.delay_hook = None
    assert store.stats()["lines_written"] + dropped == 5_000
    events = await store.events(kinds=["fleet"])
    assert sum(ev.data["lines"] for ev in events) == dropped
    await store.close()
