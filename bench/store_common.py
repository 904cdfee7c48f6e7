"""Shared helpers of the store benchmarks: realistic log chunks and a flood feeder.

The feeder plays the supervisor: one 64 KiB chunk per pipe read, round-robin
over the agents, ``append_logs`` from the event loop, and it stops reading while
the store signals pressure — exactly what ``transport.pause_reading`` does.
Chunk texts come from a pre-built pool so the feeder costs what a real read
costs (a few Python operations per chunk), not a line format per line.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from fleet.records import LogChunk
from fleet.store import Store

LINE_BYTES = 90
CHUNK_BYTES = 64 * 1024


def make_line(rng: random.Random, i: int) -> str:
    """One ~90-byte log line with a realistic mix of words, numbers and ids."""
    words = ("processed", "request", "cache", "miss", "retry", "upstream", "ok", "queue", "flush", "tick")
    line = (
        f"2026-11-25T10:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z INFO {rng.choice(words)}"
        f" {rng.choice(words)} id={rng.getrandbits(48):012x} n={i} dur={rng.random() * 100:.2f}ms"
    )
    return (line + " " + "x" * LINE_BYTES)[: LINE_BYTES - 1]


def make_pool(blocks: int = 64, seed: int = 7) -> tuple[list[str], int]:
    """``blocks`` chunk texts of ~64 KiB, each with the same number of lines."""
    rng = random.Random(seed)
    per = CHUNK_BYTES // LINE_BYTES
    pool = ["\n".join(make_line(rng, b * per + j) for j in range(per)) + "\n" for b in range(blocks)]
    return pool, per


def marker(agent: str) -> str:
    return f"lastline{agent.replace('-', '')}zq"


@dataclass
class FeedResult:
    lines: int
    chunks: int
    feed_s: float
    pauses: int
    max_lag_s: float


async def feed(store: Store, agents: int, lines_per_agent: int, pool: list[str], per: int) -> FeedResult:
    """Append ``agents`` x ``lines_per_agent`` lines; the last line of each agent is its marker."""
    names = [f"agent-{i:02d}" for i in range(agents)]
    seqs = dict.fromkeys(names, 1)
    resume = asyncio.Event()
    resume.set()
    pauses = 0

    def on_pressure(on: bool) -> None:
        nonlocal pauses
        if on:
            pauses += 1
            resume.clear()
        else:
            resume.set()

    store.on_pressure(on_pressure)
    lag = 0.0
    stop_tick = False

    async def ticker() -> None:
        nonlocal lag
        period = 0.005
        while not stop_tick:
            t0 = time.perf_counter()
            await asyncio.sleep(period)
            lag = max(lag, time.perf_counter() - t0 - period)

    tick = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    total = 0
    chunks = 0
    k = 0
    remaining = dict.fromkeys(names, lines_per_agent)
    while remaining:
        for name in list(remaining):
            left = remaining[name]
            if left > per:
                text, count = pool[k % len(pool)], per
            else:
                body = pool[k % len(pool)].split("\n", left - 1)[: left - 1]
                text, count = "\n".join([*body, f"final {marker(name)} end"]) + "\n", left
            k += 1
            store.append_logs([LogChunk(name, 1, "stdout", seqs[name], count, time.time(), text)])
            seqs[name] += count
            total += count
            chunks += 1
            if count == left:
                del remaining[name]
            else:
                remaining[name] = left - count
            if store.pressure:
                await asyncio.sleep(0)  # let the pressure callback run (it pauses "reading")
                await resume.wait()
        await asyncio.sleep(0)  # one "loop iteration" per round of reads
    feed_s = time.perf_counter() - t0
    stop_tick = True
    await tick
    return FeedResult(total, chunks, feed_s, pauses, lag)
