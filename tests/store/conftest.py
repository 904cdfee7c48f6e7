"""Fixtures and chunk builders shared by the store tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.records import LogChunk
from fleet.store import Store


def make_chunks(
    agent: str,
    first_seq: int,
    n_lines: int,
    per_chunk: int,
    *,
    stream: str = "stdout",
    ts: float | None = None,
) -> list[LogChunk]:
    """``n_lines`` lines of ``agent`` in chunks of ``per_chunk`` lines; line text names agent and seq."""
    out = []
    seq = first_seq
    end = first_seq + n_lines
    now = time.time() if ts is None else ts
    while seq < end:
        count = min(per_chunk, end - seq)
        text = "".join(f"{agent} line {s} payload-{s % 97}\n" for s in range(seq, seq + count))
        out.append(LogChunk(agent, 1, stream, seq, count, now, text))
        seq += count
    return out


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state" / "fleet.db")
    yield s
    await s.close()
