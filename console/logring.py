"""Console-side bounded log memory and the fan-out to visible log views.

The console receives logs as chunks (``fleet.records.LogChunk`` wire dicts),
never one message per line. ``LogRings`` keeps one bounded ``LogRing`` per agent
plus one for the merged view, each a deque of *blocks* (a sanitised chunk),
so ingestion costs a few Python operations per chunk, not per line. Memory is
bounded by line count per ring (whole blocks are evicted from the old end).
(Not to be confused with the supervisor's ``LogHub``, which numbers and stores
lines: this only remembers what the console shows.)

Views register while they are visible; only they get the new blocks queued
for their next paint tick. A view that becomes visible again replays from its
ring, so hidden panes cost nothing while hidden.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from fleet.ansi import sanitize

DEFAULT_MAX_LINES = 10_000


@dataclass(slots=True)
class Block:
    """Consecutive lines of one stream of one agent, sanitised (SGR kept)."""

    agent: str
    stream: str
    first_seq: int
    ts: float
    lines: list[str]
    has_tab: bool = False

    @classmethod
    def from_chunk(cls, chunk: dict[str, Any]) -> Block:
        text = sanitize(chunk["text"])
        if "\u2028" in text or "\u2029" in text:  # would split a row in two
            text = text.replace("\u2028", " ").replace("\u2029", " ")
        count = chunk["count"]
        lines = text.split("\n", count)[:count] if count else []
        if len(lines) < count:  # never shift the lines off their numbers
            lines.extend([""] * (count - len(lines)))
        return cls(chunk["agent"], chunk["stream"], chunk["first_seq"], chunk["ts"], lines, "\t" in text)

    @classmethod
    def from_lines(cls, rows: list[dict[str, Any]]) -> list[Block]:
        """Group store lines (oldest first) into blocks of equal agent/stream/ts."""
        blocks: list[Block] = []
        last: Block | None = None
        for row in rows:
            text = sanitize(row["text"].rstrip("\n")).replace("\n", " ").replace("\u2028", " ")
            if (
                last is not None
                and last.agent == row["agent"]
                and last.stream == row["stream"]
                and last.ts == row["ts"]
                and last.first_seq + len(last.lines) == row["seq"]
            ):
                last.lines.append(text)
                last.has_tab = last.has_tab or "\t" in text
                continue
            last = cls(row["agent"], row["stream"], row["seq"], row["ts"], [text], "\t" in text)
            blocks.append(last)
        return blocks


class LogRing:
    """A deque of blocks holding at most ``max_lines`` lines (approximately:
    whole blocks are evicted, and a single oversize block is trimmed)."""

    def __init__(self, max_lines: int = DEFAULT_MAX_LINES) -> None:
        self.max_lines = max_lines
        self.blocks: deque[Block] = deque()
        self.count = 0
        #: Newer lines were dropped to make room for history: reload the tail.
        self.tail_dropped = False
        #: Bumped whenever blocks are inserted other than at the end (history) or all go: a
        #: view that was built from the ring before cannot just append what came since.
        self.epoch = 0

    def append(self, block: Block) -> None:
        if len(block.lines) > self.max_lines:
            cut = len(block.lines) - self.max_lines
            block = Block(block.agent, block.stream, block.first_seq + cut, block.ts, block.lines[cut:], block.has_tab)
        self.blocks.append(block)
        self.count += len(block.lines)
        while self.count > self.max_lines:
            self.count -= len(self.blocks.popleft().lines)

    def prepend(self, blocks: list[Block]) -> int:
        """Insert older blocks in front; returns the number of lines added.

        If the ring overflows, the *newest* blocks go (the operator is reading
        history) and ``tail_dropped`` tells the view to reload the tail later.
        """
        added = 0
        self.epoch += 1
        for block in reversed(blocks):
            self.blocks.appendleft(block)
            added += len(block.lines)
        self.count += added
        while self.count > self.max_lines and len(self.blocks) > 1:
            self.count -= len(self.blocks.pop().lines)
            self.tail_dropped = True
        return added

    def clear(self) -> None:
        self.blocks.clear()
        self.count = 0
        self.tail_dropped = False
        self.epoch += 1

    def since(self, block: Block) -> list[Block] | None:
        """The blocks appended after ``block``, oldest first; None if ``block`` is no longer here."""
        newer: list[Block] = []
        for candidate in reversed(self.blocks):
            if candidate is block:
                newer.reverse()
                return newer
            newer.append(candidate)
        return None

    @property
    def first_seq(self) -> int | None:
        return self.blocks[0].first_seq if self.blocks else None

    def __iter__(self) -> Iterator[Block]:
        return iter(self.blocks)


class LogSink(Protocol):
    """What a visible log view offers the hub."""

    def queue_blocks(self, blocks: Iterable[Block]) -> None: ...


MERGED = "*"


class LogRings:
    """Owner of every ring and of which view is fed from which ring."""

    def __init__(self, max_lines: int = DEFAULT_MAX_LINES) -> None:
        self.max_lines = max_lines
        self.rings: dict[str, LogRing] = {MERGED: LogRing(max_lines)}
        self._sinks: dict[str, set[LogSink]] = {}
        self.lines_in = 0

    def ring(self, source: str) -> LogRing:
        """The ring of agent ``source`` (or ``MERGED``), created on first use."""
        ring = self.rings.get(source)
        if ring is None:
            ring = self.rings[source] = LogRing(self.max_lines)
        return ring

    def ingest(self, chunk: dict[str, Any]) -> Block:
        block = Block.from_chunk(chunk)
        self.lines_in += len(block.lines)
        agent = block.agent
        self.ring(agent).append(block)
        self.rings[MERGED].append(block)
        for source in (agent, MERGED):
            sinks = self._sinks.get(source)
            if sinks:
                for sink in sinks:
                    sink.queue_blocks((block,))
        return block

    def attach(self, source: str, sink: LogSink) -> None:
        self._sinks.setdefault(source, set()).add(sink)

    def detach(self, source: str, sink: LogSink) -> None:
        sinks = self._sinks.get(source)
        if sinks is not None:
            sinks.discard(sink)

    def attached(self, source: str) -> int:
        return len(self._sinks.get(source, ()))
