"""Console log memory: bounded rings, history in front, fan-out to visible views only."""

from __future__ import annotations

from typing import Any

from console.logring import MERGED, Block, LogRing, LogRings
from console.widgets.log_view import LogFilter, line_level, wrap_ansi
from fleet.ansi import strip_sgr


def chunk(agent: str, first: int, count: int, stream: str = "stdout", ts: float = 1.0) -> dict[str, Any]:
    text = "".join(f"{agent} line {first + i}\n" for i in range(count))
    return {"agent": agent, "run_id": 1, "stream": stream, "first_seq": first, "count": count, "ts": ts, "text": text}


def test_block_from_chunk_sanitises() -> None:
    block = Block.from_chunk({**chunk("a", 0, 2), "text": "\x1b[2Jone\x1b[31m\nt\x07wo\n"})
    assert block.lines == ["one\x1b[31m", "t␇wo"]


def test_ring_is_bounded_by_lines() -> None:
    ring = LogRing(max_lines=100)
    for i in range(50):
        ring.append(Block.from_chunk(chunk("a", i * 10, 10)))
    assert ring.count <= 100
    assert ring.first_seq == 400
    big = Block.from_chunk(chunk("a", 1000, 500))
    ring.append(big)
    assert ring.count == 100
    assert ring.first_seq == 1400


def test_prepend_history_drops_newest_when_full() -> None:
    ring = LogRing(max_lines=30)
    ring.append(Block.from_chunk(chunk("a", 100, 20)))
    added = ring.prepend([Block.from_chunk(chunk("a", 80, 20))])
    assert added == 20
    assert ring.first_seq == 80
    assert ring.count <= 30
    assert ring.tail_dropped


def test_from_lines_groups_consecutive_rows() -> None:
    rows = [{"agent": "a", "seq": i, "ts": 5.0, "stream": "stdout", "text": f"l{i}"} for i in range(5)]
    rows.append({"agent": "a", "seq": 5, "ts": 6.0, "stream": "stderr", "text": "oops"})
    blocks = Block.from_lines(rows)
    assert [len(b.lines) for b in blocks] == [5, 1]


class Sink:
    def __init__(self) -> None:
        self.blocks: list[Block] = []

    def queue_blocks(self, blocks: Any) -> None:
        self.blocks.extend(blocks)


def test_hub_feeds_only_attached_sinks() -> None:
    hub = LogRings(max_lines=1000)
    agent_sink, merged_sink = Sink(), Sink()
    hub.attach("a", agent_sink)
    hub.attach(MERGED, merged_sink)
    hub.ingest(chunk("a", 0, 3))
    hub.ingest(chunk("b", 0, 2))
    assert [b.agent for b in agent_sink.blocks] == ["a"]
    assert [b.agent for b in merged_sink.blocks] == ["a", "b"]
    hub.detach("a", agent_sink)
    hub.ingest(chunk("a", 3, 1))
    assert len(agent_sink.blocks) == 1
    assert hub.ring("a").count == 4
    assert hub.ring(MERGED).count == 6


def test_wrap_ansi_carries_colour() -> None:
    rows = wrap_ansi("\x1b[31m" + "x" * 25 + "\x1b[0m", 10)
    assert [len(strip_sgr(r)) for r in rows] == [10, 10, 5]
    assert all(r.startswith("\x1b[31m") for r in rows)
    assert wrap_ansi("short", 10) == ["short"]


def test_wrap_ansi_wide_characters() -> None:
    rows = wrap_ansi("界" * 12, 10)
    assert [strip_sgr(r) for r in rows] == ["界" * 5, "界" * 5, "界" * 2]


def test_levels_and_filter() -> None:
    assert line_level("sdk", "ERROR boom") == 3
    assert line_level("stdout", "2024-01-01 WARNING: careful") == 2
    assert line_level("stdout", "plain") == 1
    assert not LogFilter().active
    assert LogFilter(level="ERROR").describe() == "level≥error"
